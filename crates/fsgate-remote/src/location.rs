//! Where the drive's objects live: a URL (`s3://`, `gs://`, `az://`, `file://`) and the
//! options that reach the store, turned into an [`ObjectStore`].

use std::sync::Arc;

use fsgate_core::{Error, Result};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use url::Url;

/// A store URL with the settings given besides it.
///
/// Credentials and the rest come from the environment as each backend's own tools read it:
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT` (or `AWS_ENDPOINT_URL`) for S3; `GOOGLE_SERVICE_ACCOUNT` /
/// `GOOGLE_APPLICATION_CREDENTIALS` for Google Cloud Storage; `AZURE_STORAGE_ACCOUNT_NAME`,
/// `AZURE_STORAGE_ACCOUNT_KEY` and friends for Azure. [`options`](Self::options) override
/// them with `object_store`'s configuration keys (`aws_endpoint`, `aws_region`,
/// `google_service_account`, `azure_storage_account_name`, …).
#[derive(Clone, Debug, Default)]
pub struct Location {
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` or `file:///dir`.
    pub url: String,
    /// The store's endpoint, for S3 (`http://127.0.0.1:9000` for a local server) and Azure
    /// (the account's URL, `http://127.0.0.1:10000/devstoreaccount1` for Azurite); plain
    /// `http` is then allowed. Refused for `gs://` and `file://`.
    pub endpoint: Option<String>,
    /// An S3 region. Refused for the other schemes.
    pub region: Option<String>,
    /// `object_store` configuration keys and values, applied last.
    pub options: Vec<(String, String)>,
}

impl Location {
    /// Opens the store: the bucket or directory of the URL, with every key relative to its
    /// prefix. Fails with `ERROR_INVALID_PARAMETER` naming `URL` for an unknown scheme or a
    /// malformed URL, and for a `file://` directory that does not exist.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>> {
        let url = Url::parse(&self.url)
            .map_err(|e| Error::invalid_argument("URL", format!("{}: {e}", self.url)))?;
        let invalid =
            |e: object_store::Error| Error::invalid_argument("URL", format!("{}: {e}", self.url));
        let prefix = url.path().trim_matches('/').to_owned();
        self.refuse_misplaced(url.scheme())?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                let dir = url.to_file_path().map_err(|()| {
                    Error::invalid_argument("URL", format!("{}: not a local path", self.url))
                })?;
                if !dir.is_dir() {
                    return Err(Error::invalid_argument(
                        "URL",
                        format!("{}: {} is not a directory", self.url, dir.display()),
                    ));
                }
                // Deleting an object removes the directories it leaves empty, as a bucket has
                // none: an empty directory on the drive is its marker object.
                let local = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(invalid)?
                    .with_automatic_cleanup(true);
                return Ok(Arc::new(local));
            }
            "s3" | "s3a" => {
                let mut builder = AmazonS3Builder::from_env().with_url(self.url.as_str());
                if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                    builder = builder.with_endpoint(endpoint);
                }
                let endpoint = self
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var("AWS_ENDPOINT").ok())
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
                if let Some(endpoint) = endpoint {
                    if endpoint.starts_with("http://") {
                        builder = builder.with_allow_http(true);
                    }
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &self.region {
                    builder = builder.with_region(region);
                }
                for (key, value) in &self.options {
                    let key = key.parse().map_err(|e| {
                        Error::invalid_argument("--store-option", format!("{key}: {e}"))
                    })?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(invalid)?)
            }
            "gs" => {
                let mut builder = GoogleCloudStorageBuilder::from_env().with_url(self.url.as_str());
                for (key, value) in &self.options {
                    let key = key.parse().map_err(|e| {
                        Error::invalid_argument("--store-option", format!("{key}: {e}"))
                    })?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(invalid)?)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let mut builder = MicrosoftAzureBuilder::from_env().with_url(self.url.as_str());
                if let Some(endpoint) = &self.endpoint {
                    if endpoint.starts_with("http://") {
                        builder = builder.with_allow_http(true);
                    }
                    builder = builder.with_endpoint(endpoint.clone());
                }
                for (key, value) in &self.options {
                    let key = key.parse().map_err(|e| {
                        Error::invalid_argument("--store-option", format!("{key}: {e}"))
                    })?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(invalid)?)
            }
            other => {
                return Err(Error::invalid_argument(
                    "URL",
                    format!(
                        "{}: unknown scheme {other:?} (s3, gs, az or file)",
                        self.url
                    ),
                ))
            }
        };
        if prefix.is_empty() {
            return Ok(store);
        }
        Ok(Arc::new(PrefixStore::new(store, prefix.as_str())))
    }

    /// Refuses `--endpoint` and `--region` where `scheme`'s store has no such setting,
    /// rather than mounting as if they had been heard.
    fn refuse_misplaced(&self, scheme: &str) -> Result<()> {
        let s3 = matches!(scheme, "s3" | "s3a");
        let azure = matches!(scheme, "az" | "azure" | "abfs" | "abfss");
        if self.endpoint.is_some() && !(s3 || azure) {
            return Err(Error::invalid_argument(
                "--endpoint",
                format!(
                    "{}: only s3:// and az:// stores take an endpoint (Google Cloud Storage \
                     reads its from the service account file)",
                    self.url
                ),
            ));
        }
        if self.region.is_some() && !s3 {
            return Err(Error::invalid_argument(
                "--region",
                format!("{}: only s3:// stores take a region", self.url),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(url: &str, endpoint: Option<&str>, region: Option<&str>) -> Location {
        Location {
            url: url.into(),
            endpoint: endpoint.map(Into::into),
            region: region.map(Into::into),
            options: Vec::new(),
        }
    }

    /// The message of the error opening `l` gives, which must name `argument`.
    fn refusal(l: &Location, argument: &str) -> String {
        match l.open() {
            Ok(_) => panic!("{} opened", l.url),
            Err(e) => {
                assert_eq!(e.code(), fsgate_core::code::ERROR_INVALID_PARAMETER, "{e}");
                assert!(e.to_string().contains(argument), "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn settings_a_store_does_not_take_are_refused_by_name() {
        let file = format!("file://{}", std::env::temp_dir().display());
        refusal(
            &location("gs://b/p", Some("http://127.0.0.1:1"), None),
            "--endpoint",
        );
        refusal(
            &location(&file, Some("http://127.0.0.1:1"), None),
            "--endpoint",
        );
        refusal(&location("az://c/p", None, Some("eu-west-1")), "--region");
        refusal(&location(&file, None, Some("eu-west-1")), "--region");
        assert!(location(&file, None, None).open().is_ok());
    }

    #[test]
    fn an_azure_endpoint_with_an_account_opens() {
        let mut l = location(
            "az://container/prefix",
            Some("http://127.0.0.1:10000/devstoreaccount1"),
            None,
        );
        l.options = vec![
            (
                "azure_storage_account_name".into(),
                "devstoreaccount1".into(),
            ),
            ("azure_storage_account_key".into(), "a2V5".into()),
        ];
        assert!(l.open().is_ok());
    }
}
