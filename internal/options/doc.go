// Package options gathers the serve command's settings from the places a
// Debian system keeps a daemon's options, so portmapd can take over from
// rpcbind without its administrator rewriting them:
//
//   - the environment files rpcbind's unit reads (/etc/rpcbind.conf,
//     /etc/default/rpcbind, /etc/sysconfig/rpcbind) and then portmapd's
//     own /etc/default/portmapd, the later winning flag by flag, each
//     read with the quoting and $VAR expansion of the shell that sources
//     it in an init script (ParseEnvFile), whose OPTIONS (RPCBIND_OPTIONS,
//     RPCBIND_ARGS) variable holds command-line words, rpcbind's own
//     (-w -h ADDR -i ...) as well as portmapd's long flags
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
