//! Certificate profiles as data (certs/profiles.toml): what each kind of certificate may do and
//! for how long. Changing a profile is a reviewed change to a data file, not to code.

use super::{PkiError, PkiResult};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const PROFILES_TOML: &str = include_str!("../../certs/profiles.toml");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    Root,
    IssuingCa,
    EndEntity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    KeyCertSign,
    CrlSign,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendedKeyUsage {
    TimeStamping,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub kind: ProfileKind,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub validity_days: Option<i64>,
    #[serde(default)]
    pub validity_minutes: Option<i64>,
    pub key_usage: Vec<KeyUsage>,
    #[serde(default)]
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    #[serde(default)]
    pub extended_key_usage_critical: bool,
    #[serde(default)]
    pub path_len: Option<u8>,
    #[serde(default)]
    pub policies: Vec<String>,
    /// The common name of a CA (end-entity names come from the request).
    #[serde(default)]
    pub subject_cn: Option<String>,
}

impl Profile {
    pub fn validity(&self) -> time::Duration {
        match (self.validity_minutes, self.validity_days) {
            (Some(m), _) => time::Duration::minutes(m),
            (None, Some(d)) => time::Duration::days(d),
            (None, None) => time::Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    pub profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The profiles shipped in certs/profiles.toml.
    pub fn builtin() -> Profiles {
        Self::parse(PROFILES_TOML).expect("certs/profiles.toml is valid (tested)")
    }

    pub fn parse(text: &str) -> PkiResult<Profiles> {
        let p: Profiles = toml::from_str(text).map_err(|e| PkiError::Profile(e.to_string()))?;
        for (name, prof) in &p.profiles {
            if prof.validity() <= time::Duration::ZERO {
                return Err(PkiError::Profile(format!("{name}: no positive validity")));
            }
            match (&prof.kind, &prof.issuer) {
                (ProfileKind::Root, Some(_)) => {
                    return Err(PkiError::Profile(format!("{name}: a root has no issuer")));
                }
                (ProfileKind::IssuingCa | ProfileKind::EndEntity, None) => {
                    return Err(PkiError::Profile(format!("{name}: issuer missing")));
                }
                (_, Some(i)) if !p.profiles.contains_key(i) => {
                    return Err(PkiError::Profile(format!("{name}: unknown issuer `{i}`")));
                }
                _ => {}
            }
            for oid in &prof.policies {
                super::der::oid(oid)
                    .ok_or_else(|| PkiError::Profile(format!("{name}: bad policy OID `{oid}`")))?;
            }
        }
        Ok(p)
    }

    pub fn get(&self, name: &str) -> PkiResult<&Profile> {
        self.profiles
            .get(name)
            .ok_or_else(|| PkiError::UnknownProfile(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_profiles_parse() {
        let p = super::Profiles::builtin();
        assert_eq!(
            p.get("event").unwrap().validity(),
            time::Duration::minutes(30)
        );
        assert!(p.get("tsa").unwrap().extended_key_usage_critical);
        assert!(p.get("nothing").is_err());
    }
}
