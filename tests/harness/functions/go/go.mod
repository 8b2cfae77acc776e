module emulatortest/gofn

go 1.25
