module loki-sample/go-function

go 1.22
