//! [`Offer`]: an environment a remote worker says it can make, read from its
//! `hello`. Apart from `remote` and `pool` because both need it.

use serde_json::{Map, Value};
use tandem_envs::HostedSource;

use crate::worker::Worker;

/// One environment a remote worker offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub source: HostedSource,
    pub target: String,
}

/// What a greeted worker offers, read again from its hello.
pub(crate) fn offers_of(worker: &Worker) -> Option<Vec<Offer>> {
    offers(&worker.hello).ok()
}

pub(crate) fn offers(header: &Map<String, Value>) -> Result<Vec<Offer>, String> {
    let listed = header
        .get("offers")
        .and_then(Value::as_array)
        .ok_or("the hello lists no offers")?;
    listed
        .iter()
        .take(256)
        .map(|offer| {
            let text = |key: &str| offer.get(key).and_then(Value::as_str);
            let (Some(source), Some(target)) = (text("source"), text("target")) else {
                return Err("an offer without source and target".to_string());
            };
            match tandem_envs::HostedEnv::parse(&format!("{source}:{target}"), Map::new()) {
                Some(Ok(env)) => Ok(Offer {
                    source: env.source,
                    target: env.target,
                }),
                _ => Err(format!(
                    "an offer that is not an environment: {}",
                    source.chars().take(40).collect::<String>()
                )),
            }
        })
        .collect()
}
