//! Summary.
pub fn render(_c: &super::model::EnvoyConfig) -> String {
    String::new()
}
