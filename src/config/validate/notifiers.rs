//! Validation of `notifiers:`: names, type, URL source and the webhook-only secret.

use std::collections::BTreeMap;

use super::super::raw::{RawNotifier, RawSecret};
use super::super::{NotifierKind, NotifierSettings, NotifierUrl, DEFAULT_NOTIFIER_TIMEOUT};
use super::checks::given_keys;
use super::{or, root, Checker};
use crate::yaml::YamlPath;

impl Checker<'_> {
    pub(super) fn notifiers(
        &mut self,
        raw: BTreeMap<String, RawNotifier>,
    ) -> BTreeMap<String, NotifierSettings> {
        let mut notifiers = BTreeMap::new();
        for (name, notifier) in raw {
            let at = root().key("notifiers").key(name.as_str());
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                self.key_error(&at, "invalid notifier name", "use letters, digits, - and _");
            }
            if let Some(settings) = self.notifier(&at, notifier) {
                notifiers.insert(name, settings);
            }
        }
        notifiers
    }

    fn notifier(&mut self, at: &YamlPath, raw: RawNotifier) -> Option<NotifierSettings> {
        let url = self.notifier_url(at, &raw);
        let secret_key = given_keys("secret", &raw.secret()).into_iter().next();
        let secret = match (raw.kind, secret_key) {
            (Some(NotifierKind::Slack), Some(key)) => {
                self.key_error(
                    &at.key(key.as_str()),
                    format!("{key} applies only to webhook notifiers"),
                    "Slack incoming webhooks are not signed; remove it",
                );
                None
            }
            _ => self.secret(at, "secret", raw.secret()),
        };
        let timeout = or(raw.timeout, DEFAULT_NOTIFIER_TIMEOUT);
        self.positive(&at.key("timeout"), timeout);
        let kind = raw.kind.or_else(|| {
            if !self.is_rejected(&at.key("type")) {
                self.key_error(at, "missing `type`", "type: slack or type: webhook");
            }
            None
        })?;
        Some(NotifierSettings {
            kind,
            url: url?,
            secret,
            timeout,
        })
    }

    fn notifier_url(&mut self, at: &YamlPath, raw: &RawNotifier) -> Option<NotifierUrl> {
        let given: Vec<&str> = [
            raw.url.as_ref().map(|_| "url"),
            raw.url_env.as_ref().map(|_| "url_env"),
            raw.url_file.as_ref().map(|_| "url_file"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            self.only_one(at, &given, "url, url_env or url_file");
            return None;
        }
        if let Some(url) = &raw.url {
            let path = at.key("url");
            return self.check_url(&path, url).map(NotifierUrl::Literal);
        }
        let secret = RawSecret {
            env: raw.url_env.as_ref(),
            file: raw.url_file.as_ref(),
            credential: None,
        };
        if given.is_empty() && !self.is_rejected_group(at, "url") {
            self.key_error(at, "missing `url`", "set url, url_env or url_file");
            return None;
        }
        self.secret(at, "url", secret).map(NotifierUrl::Secret)
    }
}
