use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::demo::server::{Loopback, Response};
use crate::model::relay::TargetState;
use crate::sources::ngit::{self, exposition};

/// An instant-query answer holding `exposition`'s samples as `instance`'s, with `up`.
fn answer_of(parts: &[(&str, &str, Option<f64>)]) -> String {
    let mut items = Vec::new();
    for (instance, text, up) in parts {
        for s in exposition::parse(text).samples {
            let mut m = serde_json::Map::new();
            m.insert("__name__".into(), s.name.clone().into());
            for (k, v) in &s.labels {
                m.insert(k.clone(), v.clone().into());
            }
            m.insert("instance".into(), (*instance).into());
            m.insert("job".into(), "ngit".into());
            items.push(serde_json::json!({"metric": m, "value": [1.7e9, format!("{}", s.value)]}));
        }
        if let Some(up) = up {
            items.push(serde_json::json!({"metric": {"__name__": "up", "instance": instance, "job": "ngit"}, "value": [1.7e9, format!("{up}")]}));
        }
    }
    serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": items}})
        .to_string()
}

const SAMPLE: &str = include_str!("../../../tests/fixtures/ngit/metrics-sample.txt");
const V3_T0: &str = include_str!("../../../tests/fixtures/ngit/metrics-real-v3-t0-startup.txt");
const V3: &str = include_str!("../../../tests/fixtures/ngit/metrics-real-v3.txt");

#[test]
fn the_same_events_and_state_as_ngit_metrics_for_the_same_data() {
    let mut fleet = FleetState::default();
    let mut a = TargetState::new("a:7334");
    let mut b = TargetState::new("b:7334");
    let steps = [(V3_T0, SAMPLE), (V3, SAMPLE), (V3, V3_T0)];
    for (i, (ta, tb)) in steps.iter().enumerate() {
        let at = Timestamp::from_nanos((i as i64 + 1) * 60_000_000_000);
        let body = answer_of(&[("a:7334", ta, Some(1.0)), ("b:7334", tb, Some(1.0))]);
        let answer = api::parse(body.as_bytes()).unwrap();
        let (r, orphans) = readings_of(&answer, &fleet, false);
        assert_eq!(orphans, 0);
        let got = fleet.observe(at, &r);
        let mut want = a.observe(at, &ngit::readings(&exposition::parse(ta)));
        want.extend(b.observe(at, &ngit::readings(&exposition::parse(tb))));
        assert!(!want.is_empty() || i > 0);
        assert_eq!(got, want, "step {i}");
        assert_eq!(fleet.targets["a:7334"], a);
        assert_eq!(fleet.targets["b:7334"], b);
    }
    // up == 0: the "target down" of a failed scrape, once.
    let at = Timestamp::from_nanos(300_000_000_000);
    let body = answer_of(&[("a:7334", V3, Some(1.0)), ("b:7334", "", Some(0.0))]);
    let (r, _) = readings_of(&api::parse(body.as_bytes()).unwrap(), &fleet, false);
    let got = fleet.observe(at, &r);
    let want = b.scrape_failed(at, "Prometheus cannot scrape it (up == 0)");
    assert_eq!(
        got.iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["scrape_failed"]
    );
    assert_eq!(got, want);
    assert!(!fleet.targets["b:7334"].up);
}

#[test]
fn which_instances_are_targets() {
    let body = answer_of(&[
        (
            "relay:7334",
            "ngit_sync_relay_connected{relay=\"wss://a\"} 3\n",
            Some(1.0),
        ),
        ("prometheus:9090", "", Some(1.0)),
        ("node:9100", "", Some(0.0)),
    ]);
    let answer = api::parse(body.as_bytes()).unwrap();
    let fleet = FleetState::default();
    let (r, _) = readings_of(&answer, &fleet, false);
    assert_eq!(
        r.keys().collect::<Vec<_>>(),
        ["relay:7334"],
        "without a selector, up alone is no ngit relay"
    );
    let (r, _) = readings_of(&answer, &fleet, true);
    assert_eq!(r.len(), 3, "a selector names the targets: {r:?}");
    assert!(matches!(r["node:9100"], TargetReading::Down(_)));
    assert_eq!(r["prometheus:9090"], TargetReading::Up(Vec::new()));
}

#[test]
fn samples_without_an_instance_are_counted_not_guessed() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"ngit_sync_relay_connected","relay":"wss://a"},"value":[1,"3"]}]}}"#;
    let (r, orphans) = readings_of(
        &api::parse(body.as_bytes()).unwrap(),
        &FleetState::default(),
        false,
    );
    assert!(r.is_empty());
    assert_eq!(orphans, 1);
}

#[test]
fn nan_and_inf_values_join_like_an_exposition() {
    let text = "ngit_sync_relay_connected{relay=\"wss://a\"} NaN\nngit_sync_relay_status{relay=\"wss://a\"} +Inf\nngit_sync_connection_attempts_total{relay=\"wss://a\",result=\"failure\"} -Inf\n";
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"ngit_sync_relay_connected","relay":"wss://a","instance":"h"},"value":[1,"NaN"]},
        {"metric":{"__name__":"ngit_sync_relay_status","relay":"wss://a","instance":"h"},"value":[1,"+Inf"]},
        {"metric":{"__name__":"ngit_sync_connection_attempts_total","relay":"wss://a","result":"failure","instance":"h"},"value":[1,"-Inf"]}]}}"#;
    let (r, _) = readings_of(
        &api::parse(body.as_bytes()).unwrap(),
        &FleetState::default(),
        false,
    );
    assert_eq!(
        r["h"],
        TargetReading::Up(ngit::readings(&exposition::parse(text)))
    );
}

#[test]
fn the_source_option_and_the_query() {
    assert_eq!(
        parse_where("http://h:9090/").unwrap(),
        ("http://h:9090".to_string(), None)
    );
    assert_eq!(
        parse_where("https://h/prom/api/v1/query,selector={job=\"ngit\",env=~\"p.*\"}").unwrap(),
        (
            "https://h/prom".to_string(),
            Some("job=\"ngit\",env=~\"p.*\"".to_string())
        )
    );
    assert_eq!(parse_where("http://h:9090,selector={}").unwrap().1, None);
    for bad in [
        "h:9090",
        "ftp://h",
        "http://h,selector={job=\"x\"",
        "http://h,selector=ngit",
        "http://h,selector={a=\"\n\"}",
    ] {
        assert!(parse_where(bad).is_err(), "{bad}");
    }
    assert_eq!(
        query_text(Some("job=\"ngit\"")),
        "{__name__=~\"ngit_sync_relay_connected|ngit_sync_relay_status|ngit_sync_relay_failures|ngit_sync_connection_attempts_total|up\",job=\"ngit\"}"
    );
}

/// A loopback Prometheus stand-in answering every request with `reply`.
fn serve(
    reply: Arc<dyn Fn() -> Response + Send + Sync>,
) -> (String, CancellationToken, std::thread::JoinHandle<()>) {
    let server = Loopback::bind("prometheus").unwrap();
    let url = format!("http://127.0.0.1:{}", server.port);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let t = std::thread::spawn(move || server.serve(&c, |_, _| reply(), || {}));
    (url, cancel, t)
}

#[test]
fn a_prometheus_that_cannot_answer_changes_nothing() {
    let cases: Vec<(Response, &str)> = vec![
        (
            Response::new(
                400,
                "application/json",
                r#"{"status":"error","errorType":"bad_data","error":"1:14: parse error: unexpected"}"#,
            ),
            "HTTP 400 Bad Request: Prometheus answered an error (bad_data): 1:14: parse error",
        ),
        (
            Response::new(
                200,
                "application/json",
                r#"{"status":"error","errorType":"timeout","error":"query timed out"}"#,
            ),
            "Prometheus answered an error (timeout): query timed out",
        ),
        (
            Response::new(200, "text/html", "<html>login</html>"),
            "not the Prometheus API's JSON",
        ),
        (
            Response::new(502, "text/html", "<html>Bad Gateway</html>"),
            "HTTP 502 Bad Gateway: <html>Bad Gateway</html>",
        ),
    ];
    for (reply, want) in cases {
        let reply = Arc::new(reply);
        let r = reply.clone();
        let (url, cancel, t) = serve(Arc::new(move || {
            Response::new(r.status, r.content_type, r.body.clone())
        }));
        let mut fleet = FleetState::default();
        fleet.targets.insert("a".into(), TargetState::new("a"));
        let before = fleet.clone();
        let mut p = Poller::new(&url, None, fleet).unwrap();
        let err = p
            .poll(Timestamp::now(), Duration::from_secs(5))
            .unwrap_err();
        assert!(err.reason.contains(want), "{} vs {want}", err.reason);
        assert!(err.excerpt.is_some());
        assert_eq!(p.fleet, before, "nothing invented");
        cancel.cancel();
        t.join().unwrap();
    }
    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = Poller::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        FleetState::default(),
    )
    .unwrap();
    let err = p
        .poll(Timestamp::now(), Duration::from_secs(5))
        .unwrap_err();
    assert!(
        err.reason.starts_with("cannot query http://127.0.0.1:"),
        "{}",
        err.reason
    );
    assert!(
        err.reason.contains("onnection refused"),
        "the cause: {}",
        err.reason
    );
    assert!(
        !err.reason.contains("query="),
        "no query URL: {}",
        err.reason
    );
    assert!(p.fleet.targets.is_empty());
}

#[test]
fn a_poll_asks_the_one_query_and_reads_the_answer() {
    let body = answer_of(&[("a:7334", SAMPLE, Some(1.0))]);
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let server = Loopback::bind("prometheus").unwrap();
    let url = format!("http://127.0.0.1:{}/", server.port);
    let cancel = CancellationToken::new();
    let (c, s) = (cancel.clone(), seen.clone());
    let t = std::thread::spawn(move || {
        server.serve(
            &c,
            |_, target| {
                *s.lock().unwrap() = target.to_string();
                Response::new(200, "application/json", body.clone())
            },
            || {},
        )
    });
    let mut p = Poller::new(&url, Some("job=\"ngit\""), FleetState::default()).unwrap();
    let polled = p.poll(Timestamp::now(), Duration::from_secs(5)).unwrap();
    assert_eq!((polled.targets, polled.down), (1, 0));
    assert_eq!(p.fleet.targets["a:7334"].relays.len(), 10);
    let target = seen.lock().unwrap().clone();
    let u = reqwest::Url::parse(&format!("http://h{target}")).unwrap();
    assert_eq!(u.path(), "/api/v1/query");
    let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    assert_eq!(q, [("query".to_string(), query_text(Some("job=\"ngit\"")))]);
    cancel.cancel();
    t.join().unwrap();
}

#[test]
fn the_config_selector_applies_where_the_source_names_none() {
    use crate::sources::prometheus::config::PrometheusConfig;
    use crate::sources::settings::KindSettings;
    use crate::sources::SourceSpec;
    let with_config = |s: SourceSpec, c: &PrometheusConfig| {
        s.configured(&KindSettings::default().with(c.clone()))
    };
    let cfg = PrometheusConfig {
        selector: Some("{job=\"ngit\"}".into()),
    };
    let plain = SourceSpec::parse("prometheus:http://h:9090").unwrap();
    let s = with_config(plain, &cfg).unwrap();
    assert_eq!(s.key(), "prometheus:http://h:9090,selector={job=\"ngit\"}");
    let own = SourceSpec::parse("prometheus:http://h:9090,selector={job=\"x\"}").unwrap();
    assert_eq!(
        with_config(own.clone(), &cfg).unwrap(),
        own,
        "the source's own selector wins"
    );
    assert_eq!(
        SourceSpec::parse(&own.key()).unwrap(),
        own,
        "the key parses back to the same source"
    );
    let bad = PrometheusConfig {
        selector: Some("{job=\"x\"".into()),
    };
    let err = with_config(SourceSpec::parse("prometheus:http://h").unwrap(), &bad).unwrap_err();
    assert!(
        format!("{err:#}").contains("[prometheus] selector"),
        "{err:#}"
    );
    let other = SourceSpec::parse("jsonl:-").unwrap();
    assert_eq!(with_config(other.clone(), &cfg).unwrap(), other);
}

#[test]
fn the_config_section_parses() {
    let c = crate::config::Config::parse(
        "[prometheus]\nselector = '{job=\"ngit\"}'\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap();
    assert_eq!(
        c.settings()
            .get::<crate::sources::prometheus::config::PrometheusConfig>()
            .selector
            .as_deref(),
        Some("{job=\"ngit\"}")
    );
    assert!(crate::config::Config::parse(
        "[prometheus]\nselektor = 'x'\n",
        std::path::Path::new("c.toml")
    )
    .is_err());
}

#[test]
fn the_store_lists_every_instance_as_a_relay_target() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let mut w = crate::store::writer::Writer::open(&db).unwrap();
    let body = answer_of(&[("a:7334", SAMPLE, Some(1.0)), ("b:7334", V3, Some(0.0))]);
    let mut fleet = FleetState::default();
    let (r, _) = readings_of(&api::parse(body.as_bytes()).unwrap(), &fleet, true);
    let evs = fleet.observe(Timestamp::from_nanos(1_800_000_000_000_000_000), &r);
    let state = serde_json::to_string(&fleet).unwrap();
    let keys: Vec<i64> = evs.iter().map(crate::model::Event::dedup_key).collect();
    let updates: Vec<_> = fleet
        .targets
        .values()
        .map(crate::store::relays::update)
        .collect();
    let batch = |updates| crate::store::Batch {
        source: "prometheus:http://p:9090",
        events: &evs,
        keys: &keys,
        updates,
        rejects: &[],
        checkpoint: Some(&state),
    };
    w.commit(&batch(&updates)).unwrap();
    let reader = crate::store::open_reader(&db).unwrap();
    let (targets, unreadable) = reader.relay_targets().unwrap();
    let names: Vec<(&str, bool, usize)> = targets
        .iter()
        .map(|t| (t.target.as_str(), t.up, t.relays.len()))
        .collect();
    assert_eq!(names, [("a:7334", true, 10), ("b:7334", false, 0)]);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    // An instance dropped from the fleet leaves the store.
    w.commit(&batch(&[crate::store::relays::retired("b:7334")]))
        .unwrap();
    let (targets, _) = reader.relay_targets().unwrap();
    let names: Vec<&str> = targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(names, ["a:7334"]);
}

#[test]
fn an_instance_two_jobs_scrape_is_down_when_either_cannot() {
    for order in [["1", "0"], ["0", "1"]] {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[
            {{"metric":{{"__name__":"up","instance":"h","job":"a"}},"value":[1,"{}"]}},
            {{"metric":{{"__name__":"up","instance":"h","job":"b"}},"value":[1,"{}"]}}]}}}}"#,
            order[0], order[1]
        );
        let (r, _) = readings_of(
            &api::parse(body.as_bytes()).unwrap(),
            &FleetState::default(),
            true,
        );
        assert!(matches!(r["h"], TargetReading::Down(_)), "{order:?}: {r:?}");
    }
}
