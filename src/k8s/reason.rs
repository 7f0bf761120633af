//! The reason `kubectl describe pod` shows for a terminated container.

use serde::{Deserialize, Serialize};

/// The word Kubernetes shows under `State: Terminated` (or the pod's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// The runtime saw the container's cgroup OOM killer act.
    #[serde(rename = "OOMKilled")]
    OomKilled,
    /// A non-zero exit that was not an OOM kill.
    Error,
    /// Exit 0.
    Completed,
    /// The kubelet evicted the pod (node pressure).
    Evicted,
    /// The container's process could not be started.
    StartError,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::OomKilled,
        Reason::Error,
        Reason::Completed,
        Reason::Evicted,
        Reason::StartError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OomKilled => "OOMKilled",
            Reason::Error => "Error",
            Reason::Completed => "Completed",
            Reason::Evicted => "Evicted",
            Reason::StartError => "StartError",
        }
    }

    /// The reason as written (`OOMKilled`, `Completed`, ...); None for another word.
    pub fn parse(s: &str) -> Option<Reason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Every reason, comma-separated, for an error that lists them.
    pub fn names() -> String {
        Self::ALL.map(Reason::as_str).join(", ")
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialize_as_kubernetes_writes_them() {
        for r in Reason::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("OOMKiled"), None);
    }
}
