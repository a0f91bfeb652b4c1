// Package accesslog writes ocsiproxy's logs: access.log (one line per
// request in the Combined Log Format, with the answering rule and the
// duration), warnings.log and errors.log in <logdir> (stdout and stderr
// without one), or syslog with <syslog>; and, by verbosity level (-v,
// -vv, -vvv), the extra lines the README's "Log levels" lists. A [Logs]
// is an observer of the request handler: it is told about each request
// and writes its lines.
package accesslog
