//! Envoy's header map as the route layer needs it.

/// A request or response header map: names compared case-insensitively, order kept, repeated
/// names allowed (Envoy's `HeaderMap`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap(pub Vec<(String, String)>);

impl HeaderMap {
    /// Appends a header (the name is stored lower-case).
    pub fn add(&mut self, name: &str, value: &str) {
        self.0.push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Replaces every value of `name` with one value (kept at the first one's position).
    pub fn set(&mut self, name: &str, value: &str) {
        let lower = name.to_ascii_lowercase();
        let mut found = false;
        self.0.retain_mut(|(k, v)| {
            if *k != lower {
                return true;
            }
            if found {
                return false;
            }
            found = true;
            *v = value.to_string();
            true
        });
        if !found {
            self.0.push((lower, value.to_string()));
        }
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        let lower = name.to_ascii_lowercase();
        self.0.retain(|(k, _)| *k != lower);
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let lower = name.to_ascii_lowercase();
        self.0.iter().find(|(k, _)| *k == lower).map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All values of `name` joined with `,` (Envoy's `getAllOfHeaderAsString`).
    pub fn get_joined(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        let values: Vec<&str> = self.0.iter().filter(|(k, _)| *k == lower).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(","))
    }
}
