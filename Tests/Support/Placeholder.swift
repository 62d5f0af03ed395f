// Test support: see the files beside this one.
