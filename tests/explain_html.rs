//! The HTML report works offline and renders its graph: the 2019 loop case written with
//! `meshpath explain --format html`, opened in headless Chromium, screenshot decoded and
//! checked for a drawn graph (skipped with one line when Chromium is not installed).

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

const MESH: &str = "tests/fixtures/mesh";

fn loop_2019_html(out: &Path) {
    let envoy = format!("{MESH}/productpage.istio-1.1-podip-endpoint.config_dump.json");
    let status = Command::cargo_bin("meshpath")
        .expect("binary")
        .args([
            "explain",
            "--pod",
            "productpage",
            "--iptables",
            "scenarios/istio-1.1-redirect.v4.iptables-save",
            "--envoy",
            &envoy,
            "--pod-ip",
            "10.244.0.5",
            "--listen",
            "tcp:10.244.0.5:9080",
            "--from",
            "outside:10.244.1.9",
            "--dst",
            "10.244.0.5:9080",
            "--host",
            "productpage:9080",
            "--format",
            "html",
            "--output",
        ])
        .arg(out)
        .output()
        .expect("runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshpath-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

#[test]
fn html_has_no_external_resource_and_is_deterministic() {
    let dir = temp_dir("explain-offline");
    let (a, b) = (dir.join("a.html"), dir.join("b.html"));
    loop_2019_html(&a);
    loop_2019_html(&b);
    let html = std::fs::read_to_string(&a).expect("html");
    assert_eq!(html, std::fs::read_to_string(&b).expect("html"), "same input, same bytes");
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href=", "url("] {
        for (at, _) in lower.match_indices(attr) {
            let value: String = lower[at + attr.len()..].chars().take(12).collect();
            let value = value.trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http://") && !value.starts_with("https://") && !value.starts_with("//"),
                "external resource at byte {at}: {}",
                &html[at..(at + 60).min(html.len())]
            );
        }
    }
    assert!(!lower.contains("<script"), "no script needed");
    assert!(html.contains("<svg"), "the graph is inline SVG");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn html_graph_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        common::skip("explain html screenshot", "chromium not installed");
        return;
    };
    let dir = temp_dir("explain-screenshot");
    let html = dir.join("loop.html");
    let png = dir.join("loop.png");
    loop_2019_html(&html);
    let html = html.canonicalize().expect("absolute path");
    let out = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,900")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    assert!(png.is_file(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).expect("png")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    assert!(w >= 1000 && h >= 800, "{w}x{h}");
    // The graph is the left part of the page, under the title.
    let (mut drawn, mut total) = (0usize, 0usize);
    for y in 100..h.min(880) {
        for x in 30..(w * 44 / 100) {
            let i = (y * w + x) * channels;
            let Some(px) = buf.get(i..i + 3) else { continue };
            total += 1;
            if px.iter().any(|&c| c < 200) {
                drawn += 1;
            }
        }
    }
    let share = drawn as f64 / total.max(1) as f64;
    assert!(drawn > 2000 && share > 0.01, "graph area looks blank: {drawn} of {total} pixels drawn");
    let _ = std::fs::remove_dir_all(&dir);
}
