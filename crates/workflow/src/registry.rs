//! The registry: every workflow of the bundle, compiled at init, resolved per execution.
//!
//! Resolution (CONTRACT §6): `workflow_id` is `namespace/name` or a bare `name`. A bare name
//! resolves only when exactly one namespace bundles it (otherwise it is ambiguous and resolves
//! to nothing: use `namespace/name`). A version pins `document.version` exactly; without one,
//! the highest semantic version wins (pre-releases rank below their release, build metadata
//! does not count, so two versions differing only in build metadata are rejected at load).

use super::error::LoadError;
use super::expr::ExprCompiler;
use super::load::{compile_document, load_file, Format};
use super::model::{Workflow, WorkflowId};
use super::mozaiksai;
use super::options::{EngineOptions, Services};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// All bundled workflows, by name, namespace and version. `Send + Sync`; share it freely.
#[derive(Debug, Default)]
pub struct Registry {
    /// name → the namespaces that bundle it.
    by_name: BTreeMap<String, Vec<Family>>,
    count: usize,
}

/// The versions of one `namespace/name`, highest first.
#[derive(Debug)]
struct Family {
    namespace: String,
    versions: Vec<Arc<Workflow>>,
}

impl Registry {
    /// Loads every `*.yaml`, `*.yml` and `*.json` file of `dir`, and every subdirectory that
    /// is a MozaiksAI workflow folder (holds `orchestrator.yaml`; translated to one `call:
    /// agents` workflow, see `mozaiksai`); other subdirectories and hidden entries are
    /// skipped. In name order, with default [`EngineOptions`]
    /// (secrets from `MOZAIKS_SECRET_*` environment variables). Any invalid file, a
    /// duplicate namespace/name/version, a `run: workflow` naming a workflow that is not
    /// bundled, or a directory without workflows is an error.
    pub fn load_dir(dir: &Path) -> Result<Registry, LoadError> {
        Self::load_dir_with(dir, &EngineOptions::default())
    }

    /// [`Registry::load_dir`] with `options`.
    pub fn load_dir_with(dir: &Path, options: &EngineOptions) -> Result<Registry, LoadError> {
        let sources = workflow_sources(dir)?;
        if sources.is_empty() {
            return Err(LoadError::new(
                dir,
                "",
                "no workflows in this directory: add Serverless Workflow documents (*.yaml, *.yml or *.json) or MozaiksAI workflow folders",
            ));
        }
        let compiler = ExprCompiler::new();
        let services = Arc::new(Services::new(options));
        let mut registry = Registry::default();
        for source in sources {
            let workflow = match source {
                Source::File(path, format) => {
                    load_file(&path, format, &compiler, options, &services)?
                }
                Source::Folder(dir) => {
                    let document = mozaiksai::translate_with(&dir, options.tool_host.as_ref())?;
                    compile_document(&dir, &document, &compiler, options, &services)?
                }
            };
            registry.insert(workflow)?;
        }
        registry.link()?;
        Ok(registry)
    }

    /// Checks a bundle directory as [`Registry::load_dir_with`] loads it, but reports every
    /// error rather than the first: each file and MozaiksAI folder is loaded on its own, then,
    /// when all load, the bundle as a whole (duplicate versions, `run: workflow` links).
    /// Returns the workflows that loaded and the errors.
    pub fn check_dir(dir: &Path, options: &EngineOptions) -> (Vec<WorkflowId>, Vec<LoadError>) {
        let sources = match workflow_sources(dir) {
            Ok(sources) => sources,
            Err(e) => return (Vec::new(), vec![e]),
        };
        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for source in &sources {
            let path = match source {
                Source::File(path, _) | Source::Folder(path) => path,
            };
            match Workflow::load_path(path, options) {
                Ok(workflow) => loaded.push(workflow.id().clone()),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            if let Err(e) = Self::load_dir_with(dir, options) {
                errors.push(e);
            }
        }
        (loaded, errors)
    }

    /// Builds a registry from workflows loaded elsewhere (e.g. by `Workflow::parse`).
    pub fn from_workflows(
        workflows: impl IntoIterator<Item = Workflow>,
    ) -> Result<Registry, LoadError> {
        let mut registry = Registry::default();
        for workflow in workflows {
            registry.insert(workflow)?;
        }
        registry.link()?;
        Ok(registry)
    }

    /// Points every `run: workflow` reference at its target (weakly: the registry owns them).
    fn link(&self) -> Result<(), LoadError> {
        for workflow in self
            .by_name
            .values()
            .flatten()
            .flat_map(|f| f.versions.iter())
        {
            for link in &workflow.subflows {
                let id = format!("{}/{}", link.namespace, link.name);
                let Some(target) = self.resolve(&id, link.version.as_deref()) else {
                    let version = link.version.as_deref().unwrap_or("(any version)");
                    return Err(LoadError::new(
                        &workflow.source,
                        link.pointer.clone(),
                        format!("`run: workflow` names {id} {version}, which this bundle does not contain; bundle it, or fix the namespace, name or version"),
                    ));
                };
                // A workflow is linked once; a second registry over the same workflows is not possible (they move in).
                let _ = link.target.set(Arc::downgrade(&target));
            }
        }
        Ok(())
    }

    fn insert(&mut self, workflow: Workflow) -> Result<(), LoadError> {
        let families = self.by_name.entry(workflow.id.name.clone()).or_default();
        let index = match families
            .iter()
            .position(|family| family.namespace == workflow.id.namespace)
        {
            Some(index) => index,
            None => {
                families.push(Family {
                    namespace: workflow.id.namespace.clone(),
                    versions: Vec::new(),
                });
                families.len() - 1
            }
        };
        let family = &mut families[index];
        if let Some(existing) = family
            .versions
            .iter()
            .find(|w| w.version == workflow.version)
        {
            let message = if existing.id.version == workflow.id.version {
                format!(
                    "{} is also defined in {}; each namespace/name/version may be bundled once — bump `version` or remove one of the files",
                    workflow.id,
                    existing.source.display()
                )
            } else {
                format!(
                    "version {} has the same precedence as version {} in {} (build metadata does not count); bump `version` or remove one of the files",
                    workflow.id.version,
                    existing.id.version,
                    existing.source.display()
                )
            };
            return Err(LoadError::new(
                &workflow.source,
                "/document/version",
                message,
            ));
        }
        let at = family
            .versions
            .partition_point(|w| w.version > workflow.version);
        family.versions.insert(at, Arc::new(workflow));
        self.count += 1;
        Ok(())
    }

    /// The workflow named by `workflow_id` (`name` or `namespace/name`) at `version`
    /// (exact), or its highest version. `None` if unknown or a bare name is ambiguous.
    pub fn resolve(&self, workflow_id: &str, version: Option<&str>) -> Option<Arc<Workflow>> {
        let (namespace, name) = match workflow_id.split_once('/') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, workflow_id),
        };
        let families = self.by_name.get(name)?;
        let family = match (namespace, families.as_slice()) {
            (Some(namespace), _) => families.iter().find(|f| f.namespace == namespace)?,
            (None, [only]) => only,
            (None, _) => return None,
        };
        match version {
            Some(version) => family
                .versions
                .iter()
                .find(|w| w.id.version == version)
                .cloned(),
            None => family.versions.first().cloned(),
        }
    }

    /// How many workflow versions are loaded.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no workflow is loaded (never true for a registry from `load_dir`).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ids of all loaded workflows, by name, then namespace, then highest version first.
    pub fn ids(&self) -> impl Iterator<Item = &WorkflowId> {
        self.by_name
            .values()
            .flatten()
            .flat_map(|family| family.versions.iter().map(|w| w.id()))
    }

    /// All loaded workflows, in the order of [`Registry::ids`].
    pub fn workflows(&self) -> impl Iterator<Item = &Workflow> {
        self.by_name
            .values()
            .flatten()
            .flat_map(|family| family.versions.iter().map(|w| w.as_ref()))
    }
}

/// Where one bundled workflow comes from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    /// A DSL document.
    File(PathBuf, Format),
    /// A MozaiksAI workflow folder.
    Folder(PathBuf),
}

/// The workflow files and MozaiksAI folders directly in `dir`, sorted by path.
fn workflow_sources(dir: &Path) -> Result<Vec<Source>, LoadError> {
    let read_error = |e: std::io::Error| {
        LoadError::new(dir, "", format!("cannot read the workflows directory: {e}"))
    };
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let hidden = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_none_or(|name| name.starts_with('.'));
        if hidden {
            continue;
        }
        // `metadata` follows symlinks: a linked file or folder counts.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            if mozaiksai::is_folder(&path) {
                sources.push(Source::Folder(path));
            }
            continue;
        }
        // A directory named `x.yaml` is not a file.
        if let (Some(format), true) = (Format::of(&path), metadata.is_file()) {
            sources.push(Source::File(path, format));
        }
    }
    sources.sort_by(|a, b| source_path(a).cmp(source_path(b)));
    Ok(sources)
}

fn source_path(source: &Source) -> &Path {
    match source {
        Source::File(path, _) | Source::Folder(path) => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(dir: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/testdata")
            .join(dir)
    }

    fn load(dir: &str) -> Registry {
        match Registry::load_dir(&testdata(dir)) {
            Ok(registry) => registry,
            Err(e) => panic!("{e}"),
        }
    }

    fn version_of(registry: &Registry, id: &str, version: Option<&str>) -> Option<String> {
        registry
            .resolve(id, version)
            .map(|w| w.id().version.clone())
    }

    #[test]
    fn registry_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Registry>();
        assert_send_sync::<Arc<Workflow>>();
    }

    #[test]
    fn highest_semantic_version_wins() {
        let registry = load("versions");
        assert_eq!(registry.len(), 5);
        assert!(!registry.is_empty());
        // Semver order, not string order: 1.10.0 > 1.10.0-rc.1 > 1.9.0.
        assert_eq!(
            version_of(&registry, "acme/greet", None).as_deref(),
            Some("1.10.0")
        );
        assert_eq!(
            version_of(&registry, "acme/greet", Some("1.9.0")).as_deref(),
            Some("1.9.0")
        );
        assert_eq!(
            version_of(&registry, "acme/greet", Some("1.10.0-rc.1")).as_deref(),
            Some("1.10.0-rc.1")
        );
        assert_eq!(version_of(&registry, "acme/greet", Some("2.0.0")), None);
        assert_eq!(version_of(&registry, "acme/nope", None), None);
        assert_eq!(version_of(&registry, "other/greet", None), None);
    }

    #[test]
    fn bare_names_resolve_only_when_unique() {
        let registry = load("versions");
        // `greet` exists in `acme` only; `shared` exists in `acme` and `beta`.
        assert_eq!(
            version_of(&registry, "greet", None).as_deref(),
            Some("1.10.0")
        );
        assert_eq!(version_of(&registry, "shared", None), None);
        let beta = registry.resolve("beta/shared", None);
        assert_eq!(
            beta.map(|w| w.id().namespace.clone()).as_deref(),
            Some("beta")
        );
        let ids: Vec<String> = registry.ids().map(ToString::to_string).collect();
        assert_eq!(
            ids,
            [
                "acme/greet@1.10.0",
                "acme/greet@1.10.0-rc.1",
                "acme/greet@1.9.0",
                "acme/shared@1.0.0",
                "beta/shared@1.0.0"
            ]
        );
    }

    #[test]
    fn duplicate_versions_name_both_files() {
        let err = Registry::load_dir(&testdata("duplicate")).err();
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            text.contains("b.yaml: /document/version: acme/dup@1.0.0 is also defined in"),
            "{text}"
        );
        assert!(text.contains("a.yaml"), "{text}");
    }

    #[test]
    fn build_metadata_twins_are_rejected() {
        let parse = |name: &str, version: &str| {
            let yaml = format!(
                "document: {{ dsl: '1.0.3', namespace: a, name: b, version: '{version}' }}\ndo: [ {{ s: {{ set: {{ x: 1 }} }} }} ]"
            );
            Workflow::parse(Path::new(name), &yaml)
        };
        let (Ok(one), Ok(two)) = (parse("one.yaml", "1.0.0+a"), parse("two.yaml", "1.0.0+b"))
        else {
            panic!("both parse");
        };
        let err = Registry::from_workflows([one, two]).err();
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(text.contains("same precedence"), "{text}");
    }

    #[test]
    fn empty_or_missing_directories_are_errors() {
        let err = Registry::load_dir(&testdata("empty")).err();
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(text.contains("no workflows in this directory"), "{text}");
        let err = Registry::load_dir(&testdata("does-not-exist")).err();
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            text.contains("cannot read the workflows directory"),
            "{text}"
        );
    }

    #[test]
    fn an_invalid_file_stops_the_load_with_its_name() {
        let err = Registry::load_dir(&testdata("invalid")).err();
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(text.ends_with("broken.yaml: /do/0/greet/set/x: jq: undefined variable `$foo`; the runtime provides $context, $input, $secrets, $task, $workflow, $runtime, $execution here"), "{text}");
    }
}
