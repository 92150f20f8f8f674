//! Vectors as Parquet: one row per vector, a `docid` string column and a `vector` column of
//! fixed-size lists (f32, or f16 for half the disk), the set's [`VectorMeta`] as JSON in the file's
//! key-value metadata and Arrow schema metadata under [`META_KEY`]. Files are written atomically
//! (temp file, fsync, rename): a reader never sees half a file. Readers take what other tools write
//! too: an id column named `docid`, `id`, `doc_id` or `pid` (string or integer), a vector column
//! named `vector`, `embedding` or `emb` (fixed-size or variable list of f16, f32 or f64).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::atomic::{commit, temp_path};

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Float16Type, Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float16Array, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::meta::{META_KEY, VectorMeta};
use crate::{IndexError, Result, Vectors};

/// Name of the id column written.
pub const ID_COLUMN: &str = "docid";
/// Name of the vector column written.
pub const VECTOR_COLUMN: &str = "vector";
/// Id column names read, in order of preference.
const ID_COLUMNS: [&str; 4] = [ID_COLUMN, "id", "doc_id", "pid"];
/// Vector column names read, in order of preference.
const VECTOR_COLUMNS: [&str; 3] = [VECTOR_COLUMN, "embedding", "emb"];
/// Rows per row group (and per write): bounds the writer's memory.
pub const ROW_GROUP: usize = 16_384;

/// How vector values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorDtype {
    /// 4 bytes a value: exact.
    #[default]
    F32,
    /// 2 bytes a value (IEEE half): relative error ~5e-4, half the disk.
    F16,
}

impl std::str::FromStr for VectorDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" | "float32" => Ok(VectorDtype::F32),
            "f16" | "float16" => Ok(VectorDtype::F16),
            other => Err(format!("unknown vector dtype `{other}` (f32 or f16)")),
        }
    }
}

/// Writes `vectors` and `meta` to the Parquet file `path` atomically.
pub fn write_vectors(
    path: &Path,
    meta: &VectorMeta,
    vectors: &Vectors,
    dtype: VectorDtype,
) -> Result<()> {
    if meta.dim != vectors.dim {
        return Err(IndexError::Invalid(format!(
            "{}: metadata says {} dimensions, the vectors have {}",
            path.display(),
            meta.dim,
            vectors.dim
        )));
    }
    let json = serde_json::to_string(meta).expect("metadata serialises");
    let element = match dtype {
        VectorDtype::F32 => DataType::Float32,
        VectorDtype::F16 => DataType::Float16,
    };
    let item = Arc::new(Field::new("item", element, false));
    let width = i32::try_from(vectors.dim)
        .map_err(|_| IndexError::Invalid(format!("{} dimensions", vectors.dim)))?;
    let schema = Arc::new(Schema::new_with_metadata(
        vec![
            Field::new(ID_COLUMN, DataType::Utf8, false),
            Field::new(
                VECTOR_COLUMN,
                DataType::FixedSizeList(item.clone(), width),
                false,
            ),
        ],
        HashMap::from([(META_KEY.to_string(), json.clone())]),
    ));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .set_key_value_metadata(Some(vec![KeyValue::new(META_KEY.to_string(), json)]))
        .build();
    let tmp = temp_path(path);
    let parquet_err = |e: parquet::errors::ParquetError| IndexError::file(path, e);
    let arrow_err = |e: arrow_schema::ArrowError| IndexError::file(path, e);
    let file = File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
    for start in (0..vectors.len()).step_by(ROW_GROUP) {
        let end = (start + ROW_GROUP).min(vectors.len());
        let mut ids = StringBuilder::new();
        for id in &vectors.ids[start..end] {
            ids.append_value(id);
        }
        let values = &vectors.data[start * vectors.dim..end * vectors.dim];
        let values: ArrayRef = match dtype {
            VectorDtype::F32 => Arc::new(Float32Array::from(values.to_vec())),
            VectorDtype::F16 => Arc::new(Float16Array::from(
                values
                    .iter()
                    .map(|&v| half::f16::from_f32(v))
                    .collect::<Vec<_>>(),
            )),
        };
        let list =
            FixedSizeListArray::try_new(item.clone(), width, values, None).map_err(arrow_err)?;
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(ids.finish()), Arc::new(list)])
                .map_err(arrow_err)?;
        writer.write(&batch).map_err(parquet_err)?;
    }
    let file = writer.into_inner().map_err(parquet_err)?;
    commit(file, &tmp, path)
}

/// The Parquet files of `path`: the file itself, or a folder's `*.parquet` files by name.
pub fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| IndexError::io(path, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let p = entry.map_err(|e| IndexError::io(path, e))?.path();
        if p.extension().is_some_and(|e| e == "parquet") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(IndexError::file(path, "no .parquet files"));
    }
    Ok(files)
}

/// Rows of the Parquet vectors at `path` (a file or a folder of shards), from the files' footers.
pub fn count_rows(path: &Path) -> Result<usize> {
    use parquet::file::reader::FileReader;
    let mut total = 0usize;
    for f in parquet_files(path)? {
        let file = std::fs::File::open(&f).map_err(|e| IndexError::io(&f, e))?;
        let reader = parquet::file::reader::SerializedFileReader::new(file)
            .map_err(|e| IndexError::file(&f, format!("not a readable Parquet file: {e}")))?;
        total += reader.metadata().file_metadata().num_rows() as usize;
    }
    Ok(total)
}

/// The [`VectorMeta`] of one file (from its footer only), or `None` when another tool wrote it.
pub fn read_meta(path: &Path) -> Result<Option<VectorMeta>> {
    let builder = open(path)?;
    file_meta(path, &builder)
}

/// Every vector of a file or folder, and the set's metadata (`None` when another tool wrote it).
/// The files of a folder must be of one set.
pub fn read_vectors(path: &Path) -> Result<(Option<VectorMeta>, Vectors)> {
    let mut out = Vectors::default();
    let mut set: Option<(PathBuf, Option<VectorMeta>)> = None;
    for_each_batch(path, ROW_GROUP, |file, meta, batch| {
        match &set {
            None => set = Some((file.to_path_buf(), meta.cloned())),
            Some((first, first_meta)) => {
                let agree = match (first_meta, meta) {
                    (Some(a), Some(b)) => a.same_set(b),
                    (None, None) => true,
                    _ => false,
                };
                if !agree {
                    return Err(IndexError::file(
                        file,
                        format!(
                            "metadata `{META_KEY}` differs from {}'s: not one set of vectors",
                            first.display()
                        ),
                    ));
                }
            }
        }
        out.extend(batch)
            .map_err(|e| IndexError::file(file, format!("column `{VECTOR_COLUMN}`: {e}")))
    })?;
    let meta = set
        .and_then(|(_, m)| m)
        .map(|m| VectorMeta { shard: None, ..m });
    Ok((meta, out))
}

/// Calls `f` with batches of at most `batch_rows` vectors of every file of `path` in order, with
/// the file and its metadata: memory stays one batch whatever the set's size.
pub fn for_each_batch(
    path: &Path,
    batch_rows: usize,
    mut f: impl FnMut(&Path, Option<&VectorMeta>, Vectors) -> Result<()>,
) -> Result<()> {
    for file in parquet_files(path)? {
        let builder = open(&file)?;
        let meta = file_meta(&file, &builder)?;
        let (id_col, vec_col) = columns(&file, builder.schema())?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [id_col, vec_col]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_rows.max(1))
            .build()
            .map_err(|e| IndexError::file(&file, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| IndexError::file(&file, e))?;
            let ids = id_strings(batch.column(0).as_ref()).map_err(|p| {
                IndexError::file(
                    &file,
                    format!("column `{}`: {p}", batch.schema().field(0).name()),
                )
            })?;
            let (dim, data) = list_values(batch.column(1).as_ref()).map_err(|p| {
                IndexError::file(
                    &file,
                    format!("column `{}`: {p}", batch.schema().field(1).name()),
                )
            })?;
            if let Some(m) = &meta
                && m.dim != dim
            {
                return Err(IndexError::file(
                    &file,
                    format!(
                        "vectors have {dim} dimensions but metadata `{META_KEY}` says {}",
                        m.dim
                    ),
                ));
            }
            let vectors = Vectors::new(ids, dim, data).map_err(|e| IndexError::file(&file, e))?;
            f(&file, meta.as_ref(), vectors)?;
        }
    }
    Ok(())
}

/// Only the ids of a file or folder, in order (the vectors are not decoded).
pub fn read_ids(path: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for file in parquet_files(path)? {
        let builder = open(&file)?;
        let (id_col, _) = columns(&file, builder.schema())?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [id_col]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()
            .map_err(|e| IndexError::file(&file, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| IndexError::file(&file, e))?;
            out.extend(
                id_strings(batch.column(0).as_ref())
                    .map_err(|p| IndexError::file(&file, format!("id column: {p}")))?,
            );
        }
    }
    Ok(out)
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| IndexError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| IndexError::file(path, format!("not a readable Parquet file: {e}")))
}

fn file_meta(
    path: &Path,
    builder: &ParquetRecordBatchReaderBuilder<File>,
) -> Result<Option<VectorMeta>> {
    let from_kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == META_KEY))
        .and_then(|k| k.value.clone());
    let json = from_kv.or_else(|| builder.schema().metadata().get(META_KEY).cloned());
    json.map(|j| {
        serde_json::from_str(&j)
            .map_err(|e| IndexError::file(path, format!("metadata `{META_KEY}`: {e}")))
    })
    .transpose()
}

/// Root positions of the id and vector columns.
fn columns(path: &Path, schema: &Schema) -> Result<(usize, usize)> {
    let find = |names: &[&str]| names.iter().find_map(|n| schema.index_of(n).ok());
    let found = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let id = find(&ID_COLUMNS).ok_or_else(|| {
        IndexError::file(
            path,
            format!(
                "no id column ({}); columns: {}",
                ID_COLUMNS.join(", "),
                found()
            ),
        )
    })?;
    let vector = find(&VECTOR_COLUMNS).ok_or_else(|| {
        IndexError::file(
            path,
            format!(
                "no vector column ({}); columns: {}",
                VECTOR_COLUMNS.join(", "),
                found()
            ),
        )
    })?;
    Ok((id, vector))
}

fn id_strings(col: &dyn Array) -> std::result::Result<Vec<String>, String> {
    if col.null_count() > 0 {
        return Err(format!("{} null ids", col.null_count()));
    }
    let strings = |it: &mut dyn Iterator<Item = Option<&str>>| {
        it.map(|s| s.unwrap_or_default().to_string()).collect()
    };
    Ok(match col.data_type() {
        DataType::Utf8 => strings(&mut col.as_string::<i32>().iter()),
        DataType::LargeUtf8 => strings(&mut col.as_string::<i64>().iter()),
        DataType::Utf8View => strings(&mut col.as_string_view().iter()),
        DataType::Int64 => integers::<Int64Type>(col),
        DataType::Int32 => integers::<Int32Type>(col),
        DataType::UInt64 => integers::<UInt64Type>(col),
        DataType::UInt32 => integers::<UInt32Type>(col),
        other => return Err(format!("ids of type {other} (string or integer expected)")),
    })
}

/// Integer ids as decimal strings.
fn integers<T: ArrowPrimitiveType>(col: &dyn Array) -> Vec<String>
where
    T::Native: ToString,
{
    col.as_primitive::<T>()
        .values()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// `(dim, row-major values)` of a list column whose rows all have one length.
fn list_values(col: &dyn Array) -> std::result::Result<(usize, Vec<f32>), String> {
    if col.null_count() > 0 {
        return Err(format!("{} null vectors", col.null_count()));
    }
    let rows = col.len();
    let (values, dim): (ArrayRef, usize) = match col.data_type() {
        DataType::FixedSizeList(_, n) => (col.as_fixed_size_list().values().clone(), *n as usize),
        DataType::List(_) => {
            let l = col.as_list::<i32>();
            let offsets = l.value_offsets();
            let dim = equal_lengths(offsets.windows(2).map(|w| (w[1] - w[0]) as usize))?;
            let start = offsets[0] as usize;
            (l.values().slice(start, rows * dim), dim)
        }
        DataType::LargeList(_) => {
            let l = col.as_list::<i64>();
            let offsets = l.value_offsets();
            let dim = equal_lengths(offsets.windows(2).map(|w| (w[1] - w[0]) as usize))?;
            let start = offsets[0] as usize;
            (l.values().slice(start, rows * dim), dim)
        }
        other => {
            return Err(format!(
                "vectors of type {other} (a list of floats expected)"
            ));
        }
    };
    if values.null_count() > 0 {
        return Err(format!("{} null values", values.null_count()));
    }
    let data: Vec<f32> = match values.data_type() {
        DataType::Float32 => values.as_primitive::<Float32Type>().values().to_vec(),
        DataType::Float16 => values
            .as_primitive::<Float16Type>()
            .values()
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        DataType::Float64 => values
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|&v| v as f32)
            .collect(),
        other => {
            return Err(format!(
                "values of type {other} (float16, float32 or float64 expected)"
            ));
        }
    };
    if data.len() != rows * dim {
        return Err(format!("{} values for {rows} vectors of {dim}", data.len()));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "vector {} holds a non-finite value",
            i / dim.max(1)
        ));
    }
    Ok((dim, data))
}

fn equal_lengths(mut lengths: impl Iterator<Item = usize>) -> std::result::Result<usize, String> {
    let Some(first) = lengths.next() else {
        return Ok(0);
    };
    match lengths.position(|l| l != first) {
        None => Ok(first),
        Some(i) => Err(format!(
            "vector {} has another length than vector 0 ({first})",
            i + 1
        )),
    }
}
