// Command genman writes portmapd's man pages, generated from the cobra
// commands themselves so that the pages never disagree with --help;
// make install runs it:
//
//	go run ./internal/genman --dir /usr/share/man/man8
//
// It is a program of its own rather than a subcommand of portmapd because
// the man-page renderer (cobra/doc, go-md2man, blackfriday) would otherwise
// be linked into the daemon and initialised at every start: about a
// millisecond before the first answer and a megabyte of resident pages,
// for a page written once at install time.
package main
