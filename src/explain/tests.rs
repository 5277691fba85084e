//! Unit tests of the report and its counterfactuals on the mesh fixtures.
