// Package options gathers the serve command's settings from the places a
// Debian system keeps a daemon's options, so portmapd can take over from
// rpcbind without its administrator rewriting them:
//
//   - the environment file /etc/default/portmapd, read with the quoting
//     and $VAR expansion of the shell that sources it in an init script
//     (ParseEnvFile), whose OPTIONS variable holds command-line words,
//     rpcbind's own (-w -h ADDR -i ...) as well as portmapd's long flags
//     (TranslateRpcbind);
//   - PORTMAPD_* environment variables, one per flag: PORTMAPD_LOG_CALLS=1
//     is --log-calls, PORTMAPD_HOST=a,b is --host a,b (what a systemd
//     drop-in with Environment= or a container sets most easily);
//   - the command line, which wins over both, flag by flag.
//
// Load applies the first two to the flags the command line left alone.
// RewriteArgv lets the binary be installed as /sbin/rpcbind and run with
// rpcbind's command line.
package options
