//! The Prometheus HTTP API's answer to an instant query (`GET /api/v1/query`), as Prometheus,
//! Thanos, Mimir and VictoriaMetrics give it:
//!
//! ```json
//! {"status":"success","data":{"resultType":"vector","result":[
//!   {"metric":{"__name__":"up","instance":"h:7334","job":"ngit"},"value":[1700000000.123,"1"]}]},
//!  "warnings":["..."]}
//! {"status":"error","errorType":"bad_data","error":"parse error at char 3: ..."}
//! ```
//!
//! A sample's value is a string: a decimal number, `NaN`, `+Inf` or `-Inf`. Anything else (a
//! body that is not this JSON, a result that is not a vector, a value that is not a number) is
//! an error naming what is wrong; nothing is guessed.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSample {
    /// Every label, `__name__` included.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl ApiSample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// A successful answer: the samples and the warnings Prometheus added.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    pub samples: Vec<ApiSample>,
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: BTreeMap<String, String>,
    value: (serde_json::Value, String),
}

fn clip(s: &str) -> String {
    crate::sanitize::one_line(&s.chars().take(200).collect::<String>()).into_owned()
}

/// A sample value as Prometheus writes it (Go's `strconv.FormatFloat`, `NaN`, `+Inf`, `-Inf`).
pub fn value_of(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text
            .parse::<f64>()
            .ok()
            // Rust also reads `inf` and `nan`: Prometheus never writes them so.
            .filter(|v| v.is_finite()),
    }
}

/// Reads an answer body. `Err` is the reason, fit for a status line.
pub fn parse(body: &[u8]) -> Result<Answer, String> {
    let env: Envelope = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not the Prometheus API's JSON ({e})"))?;
    match env.status.as_str() {
        "success" => {}
        "error" => {
            return Err(format!(
                "Prometheus answered an error ({}): {}",
                clip(env.error_type.as_deref().unwrap_or("no errorType")),
                clip(env.error.as_deref().unwrap_or("no error text"))
            ))
        }
        other => {
            return Err(format!(
                "the answer's status is '{}', not success or error",
                clip(other)
            ))
        }
    }
    let Some(data) = env.data else {
        return Err("a successful answer without data".into());
    };
    if data.result_type != "vector" {
        return Err(format!(
            "the answer is a {}, not an instant vector",
            clip(&data.result_type)
        ));
    }
    let items: Vec<VectorItem> = serde_json::from_value(data.result)
        .map_err(|e| format!("the answer's vector is malformed ({e})"))?;
    let mut samples = Vec::with_capacity(items.len());
    for item in items {
        let Some(value) = value_of(&item.value.1) else {
            let name = item.metric.get("__name__").map_or("", String::as_str);
            return Err(format!(
                "the answer's sample {} has the value '{}', not a number",
                clip(name),
                clip(&item.value.1)
            ));
        };
        samples.push(ApiSample {
            labels: item.metric,
            value,
        });
    }
    Ok(Answer {
        samples,
        warnings: env.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_with_every_kind_of_value() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","instance":"h1:7334","job":"ngit"},"value":[1700000000.5,"1"]},
            {"metric":{"__name__":"ngit_sync_relay_connected","instance":"h1:7334","relay":"wss://a,b=c"},"value":[1700000000.5,"3"]},
            {"metric":{"__name__":"x","instance":"h1"},"value":[1700000000,"NaN"]},
            {"metric":{"__name__":"x","instance":"h2"},"value":[1700000000,"+Inf"]},
            {"metric":{"__name__":"x","instance":"h3"},"value":[1700000000,"-Inf"]},
            {"metric":{"__name__":"x","instance":"h4"},"value":[1700000000,"1e3"]},
            {"metric":{"__name__":"x","instance":"h5"},"value":[1700000000,"-0.25"]}
        ]},"warnings":["query may be slow"]}"#;
        let a = parse(body).unwrap();
        assert_eq!(a.samples.len(), 7);
        assert_eq!(a.samples[0].label("__name__"), Some("up"));
        assert_eq!(a.samples[0].value, 1.0);
        assert_eq!(a.samples[1].label("relay"), Some("wss://a,b=c"));
        assert!(a.samples[2].value.is_nan());
        assert_eq!(a.samples[3].value, f64::INFINITY);
        assert_eq!(a.samples[4].value, f64::NEG_INFINITY);
        assert_eq!(a.samples[5].value, 1000.0);
        assert_eq!(a.samples[6].value, -0.25);
        assert_eq!(a.warnings, ["query may be slow"]);
    }

    #[test]
    fn an_empty_vector_is_no_samples() {
        let a =
            parse(br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#).unwrap();
        assert!(a.samples.is_empty());
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:2: parse error"}"#,
                "Prometheus answered an error (bad_data): invalid parameter",
            ),
            (b"<html><body>502 Bad Gateway</body></html>", "not the Prometheus API's JSON"),
            (b"", "not the Prometheus API's JSON"),
            (br#"{"status":"success"}"#, "without data"),
            (
                br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                "is a matrix, not an instant vector",
            ),
            (
                br#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
                "is a scalar",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}"#,
                "vector is malformed",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up"},"value":[1,"one"]}]}}"#,
                "sample up has the value 'one', not a number",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up"},"value":[1,"infinity"]}]}}"#,
                "not a number",
            ),
            (br#"{"status":"weird"}"#, "status is 'weird'"),
        ];
        for (body, want) in cases {
            let err = parse(body).unwrap_err();
            assert!(
                err.contains(want),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn control_characters_never_reach_the_reason() {
        let err =
            parse(br#"{"status":"error","errorType":"x\u001b[2J","error":"a\nb"}"#).unwrap_err();
        assert!(!err.chars().any(char::is_control), "{err:?}");
    }
}
