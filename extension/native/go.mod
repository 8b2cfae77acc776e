module lokitelemetry

go 1.25
