"""The sample app's integ-runner test, its committed snapshot, and the snapshot check."""
