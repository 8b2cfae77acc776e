module emulatortest/goext

go 1.25
