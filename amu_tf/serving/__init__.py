"""Serving: TF-Serving-ready SavedModels (versioned, atomic), their metadata, the REST body
format, and loading an export back for ``amu predict``."""

from amu_tf.serving.exported_model import ExportedModel
from amu_tf.serving.rest_request import answer_request, format_response, parse_request
from amu_tf.serving.saved_model_export import (METADATA_FILE, SIGNATURE_KEY, ServingModule,
                                               read_metadata, write_saved_model)
from amu_tf.serving.serving_versions import (VersionWriter, latest_version, list_versions,
                                             next_version, resolve_version_dir)

__all__ = ["ExportedModel", "answer_request", "format_response", "parse_request",
           "METADATA_FILE", "SIGNATURE_KEY", "ServingModule", "read_metadata",
           "write_saved_model", "VersionWriter", "latest_version", "list_versions",
           "next_version", "resolve_version_dir"]
