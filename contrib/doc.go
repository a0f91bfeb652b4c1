// Package contrib holds no code: it is the deployment kit of ocsiproxy
// (a systemd unit, a logrotate snippet, a Dockerfile, a Kubernetes
// example), whose files its tests check.
package contrib
