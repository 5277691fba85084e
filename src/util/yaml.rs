//! The YAML reader's budget for one input: the reader's defaults (nesting 64 deep, 50,000
//! aliases with a bounded expansion ratio) stay, but the counts that only measure size (nodes,
//! events, scalar bytes) grow with the input, so a large valid file (a config dump of 1,000
//! listeners) reads as its JSON form does while alias bombs stay refused.

/// Reader options for `text`: node, event and scalar-byte budgets scaled to its length.
pub fn options_for(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    let len = text.len();
    // Without aliases, each node takes at least one byte of text and one or two events.
    budget.max_nodes = budget.max_nodes.max(len);
    budget.max_events = budget.max_events.max(len.saturating_mul(2));
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len);
    budget.max_reader_input_bytes = budget.max_reader_input_bytes.map(|m| m.max(len));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

#[cfg(test)]
mod tests {
    #[test]
    fn budgets_grow_with_the_input_but_not_below_the_defaults() {
        let d = serde_saphyr::Budget::default();
        let small = super::options_for("a: 1\n").budget.unwrap();
        assert_eq!((small.max_nodes, small.max_depth), (d.max_nodes, d.max_depth));
        let big = super::options_for(&"x".repeat(1_000_000)).budget.unwrap();
        assert_eq!(big.max_nodes, 1_000_000);
        assert_eq!(big.max_aliases, d.max_aliases);
    }
}
