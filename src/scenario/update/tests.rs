use super::*;
use crate::scenario::model::EndingKind;

fn nc() -> Expect {
    Expect {
        ending: Some(EndingKind::EnvoyResponse),
        pod: Some("productpage".into()),
        status: Some(503),
        flag: Some("NC".into()),
        envoy: Some(vec![HopExpect {
            pod: Some("productpage".into()),
            listener: Some("0.0.0.0_9080".into()),
            route_config: Some("9080".into()),
            cluster: Some("outbound|9080|v1|reviews.default.svc.cluster.local".into()),
            ..HopExpect::default()
        }]),
        ..Expect::default()
    }
}

#[test]
fn scalars_read_back_as_strings() {
    assert_eq!(scalar("0.0.0.0:9080"), "0.0.0.0:9080");
    assert_eq!(scalar("outbound|9080||reviews"), "outbound|9080||reviews");
    assert_eq!(scalar("9080"), "\"9080\"");
    assert_eq!(scalar("#0"), "\"#0\"");
    assert_eq!(scalar("true"), "\"true\"");
    assert_eq!(scalar("a b"), "\"a b\"");
    assert_eq!(scalar("say \"x\""), "\"say \\\"x\\\"\"");
    assert_eq!(scalar(""), "\"\"");
}

#[test]
fn rendered_expectations_parse_back() {
    let text = render(&nc(), 0);
    assert_eq!(
        text,
        "ending: envoy_response\npod: productpage\nstatus: 503\nflag: NC\nenvoy:\n  - pod: productpage\n    listener: 0.0.0.0_9080\n    route_config: \"9080\"\n    cluster: outbound|9080|v1|reviews.default.svc.cluster.local\n"
    );
    let back: Expect = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(back, nc());
}

const FILE: &str = "\
probes:
  # first
  - name: one
    from: a
    to: 10.0.0.1:80
    expect:
      ending: delivered   # old
      envoy:
        - listener: x

  # second, no expectations
  - name: two
    from: a
    to: 10.0.0.1:80
# trailing comment
";

#[test]
fn replaces_an_expect_block_and_inserts_a_missing_one() {
    let x = Expect { ending: Some(EndingKind::Left), ..Expect::default() };
    let out = rewrite(
        FILE,
        &[
            Edit { name_line: 3, name_col: 11, expect: &nc() },
            Edit { name_line: 12, name_col: 11, expect: &x },
        ],
    )
    .unwrap();
    let want = "\
probes:
  # first
  - name: one
    from: a
    to: 10.0.0.1:80
    expect:
      ending: envoy_response
      pod: productpage
      status: 503
      flag: NC
      envoy:
        - pod: productpage
          listener: 0.0.0.0_9080
          route_config: \"9080\"
          cluster: outbound|9080|v1|reviews.default.svc.cluster.local

  # second, no expectations
  - name: two
    from: a
    to: 10.0.0.1:80
    expect:
      ending: left
# trailing comment
";
    assert_eq!(out, want);
}

#[test]
fn flow_style_probes_are_refused() {
    let text = "probes:\n  - {name: one, from: a, to: 10.0.0.1:80}\n";
    let x = Expect::default();
    assert!(rewrite(text, &[Edit { name_line: 2, name_col: 12, expect: &x }]).is_err());
}

#[test]
fn file_without_final_newline() {
    let text = "probes:\n  - name: one\n    to: 10.0.0.1:80";
    let x = Expect { ending: Some(EndingKind::Left), ..Expect::default() };
    let out = rewrite(text, &[Edit { name_line: 2, name_col: 11, expect: &x }]).unwrap();
    assert_eq!(out, "probes:\n  - name: one\n    to: 10.0.0.1:80\n    expect:\n      ending: left\n");
}
