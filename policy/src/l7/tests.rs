use schema::cilium::HttpRule;

use super::*;

fn request<'a>(method: &'a str, path: &'a str, headers: &'a [(String, String)]) -> HttpRequest<'a> {
    HttpRequest {
        method,
        path,
        host: "deathstar.default.svc.cluster.local",
        headers,
    }
}

#[test]
fn http_fields_are_anchored_regexes() {
    let rule = HttpRule {
        method: Some("POST".to_owned()),
        path: Some("/v1/request-landing".to_owned()),
        ..HttpRule::default()
    };
    let m = HttpMatcher::new(&rule).expect("valid");
    assert!(m.matches(&request("POST", "/v1/request-landing", &[])));
    assert!(!m.matches(&request("POST", "/v1/request-landing/x", &[])));
    assert!(!m.matches(&request("PUT", "/v1/request-landing", &[])));
    let prefix = HttpMatcher::new(&HttpRule {
        path: Some("/v1/.*".to_owned()),
        ..HttpRule::default()
    })
    .expect("valid");
    assert!(prefix.matches(&request("GET", "/v1/anything", &[])));
    assert!(!prefix.matches(&request("GET", "/v2/anything", &[])));
}

#[test]
fn headers_need_presence_or_an_exact_value() {
    let m = HttpMatcher::new(&HttpRule {
        headers: vec!["X-My-Header: true".to_owned(), "X-Token".to_owned()],
        ..HttpRule::default()
    })
    .expect("valid");
    let both = [
        ("x-my-header".to_owned(), "true".to_owned()),
        ("X-Token".to_owned(), "abc".to_owned()),
    ];
    let wrong = [
        ("X-My-Header".to_owned(), "false".to_owned()),
        ("X-Token".to_owned(), String::new()),
    ];
    assert!(m.matches(&request("GET", "/", &both)));
    assert!(!m.matches(&request("GET", "/", &wrong)));
    assert!(!m.matches(&request("GET", "/", &both[..1])));
}

#[test]
fn dns_patterns_follow_cilium() {
    let p = |s| FqdnPattern::pattern(s).expect("valid");
    assert!(p("*.cilium.io").matches("sub.cilium.io."));
    assert!(!p("*.cilium.io").matches("cilium.io"));
    assert!(!p("*.cilium.io").matches("a.b.cilium.io"));
    assert!(p("part*ial.com").matches("partial.com"));
    assert!(p("part*ial.com").matches("part-x-ial.com"));
    assert!(p("*").matches("anything.example"));
    assert!(p("**.cilium.io").matches("a.b.cilium.io"));
    assert!(!p("**.cilium.io").matches("cilium.io"));
    let n = FqdnPattern::name("API.GitHub.com.").expect("valid");
    assert!(n.matches("api.github.com"));
    assert!(!n.matches("xapi.github.com"));
}
