//! Request parameters as pve-http-server extracts them: the query string for
//! GET and DELETE, the body for POST and PUT as `application/json` or
//! form data (any other content type is decoded as form data).

/// The parameters of a request, in order; a key may repeat (array parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Decodes a query string or form body.
    pub fn from_form(bytes: &[u8]) -> Params {
        Params(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Decodes a JSON object body: strings as they are, numbers printed,
    /// booleans as 1/0, arrays as repeated keys.
    pub fn from_json(bytes: &[u8]) -> Result<Params, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("unable to parse JSON body - {e}"))?;
        let serde_json::Value::Object(map) = value else {
            return Err("JSON body is not an object".to_owned());
        };
        let mut pairs = Vec::new();
        for (key, value) in map {
            let items = match value {
                serde_json::Value::Array(items) => items,
                other => vec![other],
            };
            for item in items {
                let text = match item {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Bool(b) => u8::from(b).to_string(),
                    serde_json::Value::Null => continue,
                    other => other.to_string(),
                };
                pairs.push((key.clone(), text));
            }
        }
        Ok(Params(pairs))
    }

    /// The body of a PUT/POST, by content type.
    pub fn from_body(content_type: Option<&str>, bytes: &[u8]) -> Result<Params, String> {
        let is_json = content_type
            .map(|ct| ct.split(';').next().unwrap_or("").trim() == "application/json")
            .unwrap_or(false);
        if is_json {
            Params::from_json(bytes)
        } else {
            Ok(Params::from_form(bytes))
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses parameters the endpoint does not have, with pve-http-server's words.
    pub fn only(&self, allowed: &[&str]) -> Result<(), super::error::ApiError> {
        let unknown: std::collections::BTreeMap<String, String> = self
            .0
            .iter()
            .filter(|(key, _)| !allowed.contains(&key.as_str()))
            .map(|(key, _)| {
                let message = "property is not defined in schema and the schema does not allow additional properties";
                (key.clone(), message.to_owned())
            })
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(super::error::ApiError::params(unknown))
        }
    }

    /// Adds the pairs of `other` (query + body).
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_json_bodies_decode_alike() {
        let form = Params::from_form(b"schedule=02%3A30+UTC&exclude-path=%2Fa&exclude-path=%2Fb");
        let json = Params::from_json(br#"{"schedule":"02:30 UTC","exclude-path":["/a","/b"]}"#)
            .expect("json");
        let sorted = |mut p: Params| {
            p.0.sort();
            p
        };
        assert_eq!(sorted(form.clone()), sorted(json));
        assert_eq!(form.get("schedule"), Some("02:30 UTC"));
        let typed = Params::from_json(br#"{"enabled":false,"bwlimit":10}"#).expect("json");
        assert_eq!(typed.get("enabled"), Some("0"));
        assert_eq!(typed.get("bwlimit"), Some("10"));
    }
}
