"""Writes a Parquet image dataset with Hugging Face's own `datasets` library, as the Hub
publishes them: an Image() struct column {bytes, path} and an int64 label column.

    hf_write.py ROWS.tsv OUT.parquet IMAGE_COLUMN ROWS_PER_GROUP

ROWS.tsv has one row a line, KIND<TAB>PATH<TAB>LABEL: KIND "file" stores the file's bytes,
"pathonly" stores the path with null bytes (an image kept outside the file), "corrupt" stores
bytes that are no image. An empty LABEL is a null label.
"""
import sys

import datasets


def main(rows_tsv, out, image_column, rows_per_group):
    images, labels = [], []
    with open(rows_tsv) as f:
        for line in f:
            kind, path, label = line.rstrip("\n").split("\t")
            if kind == "file":
                with open(path, "rb") as img:
                    images.append({"bytes": img.read(), "path": path.rsplit("/", 1)[-1]})
            elif kind == "pathonly":
                images.append({"bytes": None, "path": path})
            elif kind == "corrupt":
                images.append({"bytes": b"this is not an image", "path": "corrupt.jpg"})
            else:
                raise SystemExit(f"unknown kind {kind}")
            labels.append(int(label) if label else None)
    features = datasets.Features({image_column: datasets.Image(), "label": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict({image_column: images, "label": labels}, features=features)
    # to_parquet writes one row group per batch, as push_to_hub does (100 rows for images).
    ds.to_parquet(out, batch_size=int(rows_per_group))


if __name__ == "__main__":
    main(*sys.argv[1:])
