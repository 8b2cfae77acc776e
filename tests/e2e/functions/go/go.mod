module e2efunction

go 1.25
