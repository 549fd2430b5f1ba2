//! Integration tests live under tests/; see tests/tests/.
