module github.com/ocsiproxy/ocsiproxy

go 1.26.8

require (
	github.com/beevik/etree v1.8.1
	github.com/dlclark/regexp2 v1.12.0
	github.com/spf13/pflag v1.0.10
)
