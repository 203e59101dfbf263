use std::fmt;
use std::str::FromStr;

/// debug < info < warning < error. Stored as its integer rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Debug,
        Severity::Info,
        Severity::Warning,
        Severity::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn rank(self) -> i64 {
        self as i64
    }

    pub fn from_rank(rank: i64) -> Option<Severity> {
        Severity::ALL.get(usize::try_from(rank).ok()?).copied()
    }

    /// Accepts Spacedrive's spellings (`info`, `Info`) and the usual syslog-style synonyms.
    pub fn parse(text: &str) -> Option<Severity> {
        let t = text.trim();
        let eq = |s: &str| t.eq_ignore_ascii_case(s);
        if eq("debug") || eq("trace") {
            Some(Severity::Debug)
        } else if eq("info") || eq("information") || eq("notice") {
            Some(Severity::Info)
        } else if eq("warning") || eq("warn") {
            Some(Severity::Warning)
        } else if eq("error")
            || eq("err")
            || eq("critical")
            || eq("crit")
            || eq("fatal")
            || eq("alert")
            || eq("emerg")
        {
            Some(Severity::Error)
        } else {
            None
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::parse(s).ok_or_else(|| {
            format!("unknown severity '{s}' (expected debug, info, warning or error)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_spellings() {
        assert!(Severity::Debug < Severity::Info);
        assert!(Severity::Warning < Severity::Error);
        assert_eq!(Severity::parse("Info"), Some(Severity::Info));
        assert_eq!(Severity::parse("WARN"), Some(Severity::Warning));
        assert_eq!(Severity::parse("fatal"), Some(Severity::Error));
        assert_eq!(Severity::parse("loud"), None);
        for s in Severity::ALL {
            assert_eq!(Severity::from_rank(s.rank()), Some(s));
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        assert_eq!(Severity::from_rank(7), None);
    }
}
