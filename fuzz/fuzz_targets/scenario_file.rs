#![no_main]
//! Scenario files: the YAML into the scenario model, as `meshpath check` reads it.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let options = meshpath::util::yaml::options_for(text);
        let _ = serde_saphyr::from_str_with_options::<meshpath::scenario::ScenarioFile>(text, options);
    }
});
