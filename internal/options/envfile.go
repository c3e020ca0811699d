package options

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// DefaultEnvFile is where Debian keeps a daemon's options; rpcbind's is
// /etc/default/rpcbind.
const DefaultEnvFile = "/etc/default/portmapd"

// DefaultEnvFiles are the options files read by default, each winning
// over the ones before it flag by flag: rpcbind's, in the order its unit
// (1.2.8) lists them as EnvironmentFile=, where a later file overrides an
// earlier one, then portmapd's own. An rpcbind configuration keeps
// working when portmapd takes over, and portmapd's file has the last
// word.
var DefaultEnvFiles = []string{"/etc/rpcbind.conf", "/etc/default/rpcbind", "/etc/sysconfig/rpcbind", DefaultEnvFile}

// OptionVars are the variables whose value is a list of command-line
// words, in the order their words are read: Debian's (OPTIONS, also
// portmapd's own), upstream rpcbind's unit (RPCBIND_OPTIONS) and
// Fedora's and RHEL's (RPCBIND_ARGS).
var OptionVars = []string{"OPTIONS", "RPCBIND_OPTIONS", "RPCBIND_ARGS"}

// maxEnvFile bounds what is read: an options file is a few lines, and
// reading a mistaken path (a device, a log) must not take the memory.
const maxEnvFile = 1 << 20

// ErrSyntax is wrapped by ParseEnvFile's errors.
var ErrSyntax = errors.New("environment file syntax")

// ReadEnvFile parses the file at path (see ParseEnvFile). A missing file
// gives nil and an error matching fs.ErrNotExist, which callers treat as
// "no settings", as systemd does for EnvironmentFile=-path.
func ReadEnvFile(path string, lookup func(string) (string, bool)) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars, err := ParseEnvFile(io.LimitReader(f, maxEnvFile+1), lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}

// ParseEnvFile reads shell variable assignments as /bin/sh would when an
// init script sources the file: NAME=value lines, optionally after
// "export", several to a line if need be; '#' comments; values in single
// quotes (verbatim), double quotes (with \ escaping $ ` " \ and newline)
// or unquoted (with \ escaping any character), pieces concatenated; and
// $NAME and ${NAME} expanded from the assignments above it, then from
// lookup (which may be nil: unset names expand to nothing, as in sh).
// Debian's own files rely on the expansion:
//
//	OPTIONS="-w"
//	OPTIONS="${OPTIONS} -h 127.0.0.1"
//
// Nothing is executed: a line that is not an assignment, a command
// substitution ($(...) or backquotes), an expansion with an operator
// (${X:-y}) or a shell operator is an error naming the line, rather than
// something silently read differently from the shell.
func ParseEnvFile(r io.Reader, lookup func(string) (string, bool)) (map[string]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxEnvFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxEnvFile {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrSyntax, maxEnvFile)
	}
	p := &envParser{s: string(b), line: 1, vars: map[string]string{}, lookup: lookup}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.vars, nil
}

type envParser struct {
	s      string
	i      int
	line   int
	vars   map[string]string
	lookup func(string) (string, bool)
}

func (p *envParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSyntax, p.line, fmt.Sprintf(format, args...))
}

func (p *envParser) eof() bool  { return p.i >= len(p.s) }
func (p *envParser) peek() byte { return p.s[p.i] }

// next consumes one byte, counting lines.
func (p *envParser) next() byte {
	c := p.s[p.i]
	p.i++
	if c == '\n' {
		p.line++
	}
	return c
}

func isBlank(c byte) bool     { return c == ' ' || c == '\t' || c == '\r' }
func isNameStart(c byte) bool { return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isNameChar(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

func (p *envParser) parse() error {
	for {
		// Between assignments: blanks, newlines, ';' and comments.
		for !p.eof() && (isBlank(p.peek()) || p.peek() == '\n' || p.peek() == ';') {
			p.next()
		}
		if p.eof() {
			return nil
		}
		if p.peek() == '#' {
			p.skipComment()
			continue
		}
		name := p.name()
		if name == "export" && !p.eof() && isBlank(p.peek()) {
			if err := p.exportList(); err != nil {
				return err
			}
			continue
		}
		if err := p.assignment(name); err != nil {
			return err
		}
	}
}

func (p *envParser) skipComment() {
	for !p.eof() && p.peek() != '\n' {
		p.next()
	}
}

func (p *envParser) name() string {
	start := p.i
	if p.eof() || !isNameStart(p.peek()) {
		return ""
	}
	for !p.eof() && isNameChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// exportList reads "export A=1 B" after the word export: assignments, or
// bare names (which only mark a variable for export and change nothing
// here).
func (p *envParser) exportList() error {
	for {
		for !p.eof() && isBlank(p.peek()) {
			p.next()
		}
		if p.eof() || p.peek() == '\n' || p.peek() == ';' || p.peek() == '#' {
			return nil
		}
		name := p.name()
		if name == "" {
			return p.errorf("export: %q is not a variable name", p.rest())
		}
		if !p.eof() && p.peek() == '=' {
			if err := p.assignment(name); err != nil {
				return err
			}
			continue
		}
		if !p.eof() && !isBlank(p.peek()) && p.peek() != '\n' && p.peek() != ';' {
			return p.errorf("export: %q is not a variable name", name+p.rest())
		}
	}
}

// rest returns what is left of the current line, for error messages.
func (p *envParser) rest() string {
	end := strings.IndexByte(p.s[p.i:], '\n')
	if end < 0 {
		return p.s[p.i:]
	}
	return p.s[p.i : p.i+end]
}

func (p *envParser) assignment(name string) error {
	if name == "" || p.eof() || p.peek() != '=' {
		return p.errorf("%q is not an assignment (only NAME=value lines are read; nothing is run)", name+p.rest())
	}
	p.next() // '='
	v, err := p.word()
	if err != nil {
		return err
	}
	p.vars[name] = v
	// What follows a value: the end of the line, another assignment
	// after blanks, or a comment after blanks.
	if !p.eof() && !isBlank(p.peek()) && p.peek() != '\n' && p.peek() != ';' {
		return p.errorf("unexpected %q after the value of %s", p.peek(), name)
	}
	for !p.eof() && isBlank(p.peek()) {
		p.next()
	}
	if !p.eof() && p.peek() == '#' {
		p.skipComment()
	}
	return nil
}

// word reads one shell word: the value of an assignment. Assignments are
// not split into fields, so an expansion's spaces stay in the value.
func (p *envParser) word() (string, error) {
	var b strings.Builder
	for !p.eof() {
		c := p.peek()
		switch {
		case isBlank(c) || c == '\n' || c == ';':
			return b.String(), nil
		case c == '\\':
			p.next()
			if p.eof() {
				return "", p.errorf("backslash at the end of the file")
			}
			if e := p.next(); e != '\n' { // backslash-newline continues the line
				b.WriteByte(e)
			}
		case c == '\'':
			p.next()
			start := p.i
			end := strings.IndexByte(p.s[start:], '\'')
			if end < 0 {
				return "", p.errorf("unterminated single quote")
			}
			for p.i < start+end {
				p.next() // one by one, to count the lines inside the quotes
			}
			b.WriteString(p.s[start:p.i])
			p.next() // the closing quote
		case c == '"':
			p.next()
			if err := p.doubleQuoted(&b); err != nil {
				return "", err
			}
		case c == '$':
			if err := p.expand(&b); err != nil {
				return "", err
			}
		case c == '`':
			return "", p.errorf("command substitution is not supported")
		case strings.IndexByte("|&<>()", c) >= 0:
			return "", p.errorf("shell operator %q is not supported", c)
		default:
			b.WriteByte(p.next())
		}
	}
	return b.String(), nil
}

func (p *envParser) doubleQuoted(b *strings.Builder) error {
	start := p.line
	for !p.eof() {
		c := p.peek()
		switch c {
		case '"':
			p.next()
			return nil
		case '\\':
			p.next()
			if p.eof() {
				break
			}
			switch e := p.next(); e {
			case '$', '`', '"', '\\':
				b.WriteByte(e)
			case '\n':
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case '$':
			if err := p.expand(b); err != nil {
				return err
			}
		case '`':
			return p.errorf("command substitution is not supported")
		default:
			b.WriteByte(p.next())
		}
	}
	return fmt.Errorf("%w: line %d: unterminated double quote", ErrSyntax, start)
}

// expand handles '$' at the current position.
func (p *envParser) expand(b *strings.Builder) error {
	p.next() // '$'
	if p.eof() {
		b.WriteByte('$')
		return nil
	}
	switch c := p.peek(); {
	case c == '{':
		p.next()
		name := p.name()
		if name == "" || p.eof() || p.peek() != '}' {
			return p.errorf("only ${NAME} expansions are supported")
		}
		p.next()
		b.WriteString(p.value(name))
	case isNameStart(c):
		b.WriteString(p.value(p.name()))
	case c == '(':
		return p.errorf("command substitution is not supported")
	case c >= '0' && c <= '9' || strings.IndexByte("@*#?$!-", c) >= 0:
		return p.errorf("special parameter $%c is not supported", c)
	default:
		b.WriteByte('$') // a lone dollar sign is literal in sh
	}
	return nil
}

func (p *envParser) value(name string) string {
	if v, ok := p.vars[name]; ok {
		return v
	}
	if p.lookup != nil {
		if v, ok := p.lookup(name); ok {
			return v
		}
	}
	return ""
}

// isNotExist reports whether err means the file is absent.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
