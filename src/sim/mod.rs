//! Placeholder: the simulated reader is being written.
