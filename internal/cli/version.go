package cli

import "runtime/debug"

// Version is set at build time (make build passes -ldflags -X); a binary
// built with plain go build reports the commit Go recorded instead.
var Version = ""

// version is what -v and --version print.
func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "0.9.0+" + s.Value[:12]
			}
		}
	}
	return "0.9.0"
}
