//! A dataset migration as a caller asks for it: the source, the destination, the layout the
//! destination gets and the parity after it. [`MigrationJob`] chooses the executor (plain
//! copy, or the packed writer), refuses combinations that cannot work before anything is
//! copied, and writes the parity only after a complete copy, so a front end (the CLI, a
//! worker) parses, calls and prints, and never assembles the steps itself.

use std::sync::Arc;

use strata_catalog::Catalog;
use strata_codec::analyze::Objective;
use strata_codec::parity::ParityRequest;
use strata_store::Store;

use crate::encryption::{dataset_encryption, DatasetSealer, KeyRing};
use crate::{
    migrate, migrate_packed, write_parity, DatasetSource, MigrateOptions, MigrationReport,
    MoverError, ParityReport, Progress,
};

/// The layout a migration writes.
#[derive(Debug, Clone, Copy)]
pub enum TargetLayout {
    /// The source's files as they are (a packed source is restored to plain files).
    Plain,
    /// Chunks packed into compressed, checked objects, chosen per chunk by `Objective`.
    Packed(Objective),
}

/// One migration: what to copy where, and how.
pub struct MigrationJob {
    source: DatasetSource,
    destination: Store,
    options: MigrateOptions,
    layout: TargetLayout,
    parity: Option<ParityRequest>,
    sealer: Option<Arc<DatasetSealer>>,
}

impl MigrationJob {
    /// A migration of `source` to `destination`; refused (naming the flag to change) when
    /// parity is asked of a plain layout or a packed source is to be packed again.
    pub fn new(
        source: DatasetSource,
        destination: Store,
        options: MigrateOptions,
        layout: TargetLayout,
        parity: Option<ParityRequest>,
    ) -> Result<MigrationJob, MoverError> {
        if parity.is_some() && matches!(layout, TargetLayout::Plain) {
            return Err(MoverError::InvalidOptions(
                "--parity needs --layout packed: parity covers packed objects".to_string(),
            ));
        }
        if let (TargetLayout::Packed(_), DatasetSource::Packed(_)) = (&layout, &source) {
            let location = source.store().display();
            return Err(MoverError::InvalidOptions(format!(
                "{location} is already a packed store; restore it to plain files first \
                 (strata migrate {location} PLAIN_DIR)"
            )));
        }
        Ok(MigrationJob {
            source,
            destination,
            options,
            layout,
            parity,
            sealer: None,
        })
    }

    /// This job writing an encrypted dataset sealed with `keys` (`--encrypt`); refused,
    /// naming the flag, for a plain layout (its files must stay readable without Strata)
    /// and with parity (`strata repair` and parity do not seal yet: refused rather than
    /// risk writing anything in clear).
    pub fn encrypt(mut self, keys: KeyRing) -> Result<MigrationJob, MoverError> {
        if matches!(self.layout, TargetLayout::Plain) {
            return Err(MoverError::InvalidOptions(
                "--encrypt needs --layout packed: a plain destination's files stay readable \
                 without Strata, which encrypted ones cannot be"
                    .to_string(),
            ));
        }
        if self.parity.is_some() {
            return Err(MoverError::InvalidOptions(
                "--parity cannot be combined with --encrypt yet: parity over an encrypted \
                 dataset and its repair are not built; migrate without --parity"
                    .to_string(),
            ));
        }
        self.sealer = Some(Arc::new(DatasetSealer::new(keys)));
        Ok(self)
    }
    /// The destination the job writes to.
    pub fn destination(&self) -> &Store {
        &self.destination
    }

    /// The parity the job writes after the data, if any.
    pub fn parity_request(&self) -> Option<&ParityRequest> {
        self.parity.as_ref()
    }

    /// Copies the data (or, with `dry_run`, plans it): resumable, every chunk verified,
    /// each file published once verified, the manifest last.
    pub async fn copy(
        &self,
        catalog: Arc<dyn Catalog>,
        progress: Arc<Progress>,
    ) -> Result<MigrationReport, MoverError> {
        match (&self.layout, &self.source) {
            (TargetLayout::Packed(objective), DatasetSource::Plain(store)) => {
                let (options, destination) = (&self.options, &self.destination);
                let sealer = self.sealer.clone();
                migrate_packed(
                    catalog,
                    store,
                    destination,
                    options,
                    *objective,
                    sealer,
                    progress,
                )
                .await
            }
            _ => {
                if let Some(sealed) = dataset_encryption(&self.destination).await? {
                    return Err(MoverError::InvalidOptions(format!(
                        "{} is an encrypted packed dataset (key id {}): a plain copy would \
                         write files in clear into it; choose another destination, or add \
                         --layout packed --encrypt with its key",
                        self.destination.display(),
                        sealed.key_id
                    )));
                }
                let (source, destination) = (&self.source, &self.destination);
                migrate(catalog, source, destination, &self.options, progress).await
            }
        }
    }

    /// Writes the parity asked for, once `report` shows the data complete (a dry run or an
    /// incomplete copy writes none); `announce` hears the plan before anything is written.
    pub async fn write_parity(
        &self,
        report: &MigrationReport,
        announce: impl FnOnce(&ParityReport),
    ) -> Result<Option<ParityReport>, MoverError> {
        match &self.parity {
            Some(request) if report.root_hash.is_some() && !self.options.dry_run => {
                let jobs = self.options.jobs;
                Ok(Some(
                    write_parity(&self.destination, *request, jobs, announce).await?,
                ))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::store;

    fn refusal(result: Result<MigrationJob, MoverError>) -> String {
        match result {
            Ok(_) => panic!("the job was accepted"),
            Err(err) => err.to_string(),
        }
    }

    #[tokio::test]
    async fn parity_on_a_plain_layout_is_refused_naming_the_flags() {
        let source = DatasetSource::Plain(store("memory://job-src-1").await);
        let request = ParityRequest::parse("ec:4+2").unwrap();
        let options = MigrateOptions::default();
        let job = MigrationJob::new(
            source,
            store("memory://job-dst-1").await,
            options,
            TargetLayout::Plain,
            Some(request),
        );
        let message = refusal(job);
        assert!(
            message.contains("--parity needs --layout packed"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_plain_source_to_a_packed_layout_with_parity_is_accepted() {
        let source = DatasetSource::Plain(store("memory://job-src-2").await);
        let job = MigrationJob::new(
            source,
            store("memory://job-dst-2").await,
            MigrateOptions::default(),
            TargetLayout::Packed(Objective::MaxRatio),
            ParityRequest::parse("ec:4+2").ok(),
        )
        .unwrap();
        assert!(job.parity_request().is_some());
    }
}
