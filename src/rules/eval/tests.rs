//! Unit tests of evaluation: outcomes, keys, dedupe, cooldown, throttle, silences, modes.
