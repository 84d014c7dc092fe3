"""CelebA source on a fixture in the official layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import write_celeba

from ugvae_pipeline.data.celeba import ATTRIBUTES, load_celeba
from ugvae_pipeline.data.sources import load_source


def test_celeba_images_are_cropped_rgb_uint8(celeba_root):
    images, metadata = load_source(
        {"source": "celeba", "celeba": {"root": str(celeba_root), "image_size": 16}}
    )
    assert images.shape == (36, 3, 16, 16) and images.dtype == np.uint8
    # the centred 148x148 crop is red: no blue border survives the crop
    border = np.concatenate([images[:, 2, [0, -1], :].ravel(), images[:, 2, :, [0, -1]].ravel()])
    assert images[:, 0].mean() > 240 and border.max() < 40
    assert list(metadata["image_id"]) == list(range(36))


def test_celeba_metadata_keeps_attributes_partition_and_split(celeba_root, tmp_path):
    values = write_celeba(tmp_path / "again")  # same seed: the fixture's attribute values
    _, metadata = load_celeba(celeba_root, image_size=8)
    assert set(ATTRIBUTES) <= set(metadata.columns)
    assert all(metadata[name].dtype == bool for name in ATTRIBUTES)
    np.testing.assert_array_equal(metadata[ATTRIBUTES].to_numpy(), values == 1)
    assert metadata["filename"].iloc[0] == "000001.jpg"
    assert (metadata["source"] == "celeba").all() and (metadata["label"] == -1).all()
    split_of = metadata.groupby("partition")["split"].unique().map(list).to_dict()
    assert split_of == {0: ["train"], 1: ["validation"], 2: ["test"]}


def test_celeba_limit_and_crop_size(celeba_root):
    images, metadata = load_celeba(celeba_root, image_size=8, crop_size=None, limit=5)
    assert images.shape == (5, 3, 8, 8) and len(metadata) == 5
    assert images[:, 2].max() > 100  # the largest square keeps some of the blue border


def test_missing_root_names_path_layout_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_celeba(tmp_path / "nowhere")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    assert "list_attr_celeba.txt" in message and "img_align_celeba" in message
    assert "mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in message


def test_attribute_file_with_missing_column_is_named(celeba_root):
    path = celeba_root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("Wearing_Hat ", "")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"list_attr_celeba.txt.*Wearing_Hat.*missing"):
        load_celeba(celeba_root)


def test_attribute_row_with_a_missing_value_is_named(celeba_root):
    path = celeba_root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0]  # drop the last value of the third image
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"list_attr_celeba.txt: row 3 \(000003.jpg\)"):
        load_celeba(celeba_root)


def test_count_disagreeing_with_header_is_named(celeba_root):
    path = celeba_root / "list_attr_celeba.txt"
    path.write_text("37\n" + path.read_text().split("\n", 1)[1])
    with pytest.raises(
        ValueError, match=r"list_attr_celeba.txt: line 1 declares 37 images but the file lists 36"
    ):
        load_celeba(celeba_root)


def test_count_disagreeing_with_image_folder_is_named(celeba_root):
    (celeba_root / "img_align_celeba" / "000007.jpg").unlink()
    with pytest.raises(
        ValueError, match=r"lists 36 images but 1 are not in .*img_align_celeba.*000007.jpg"
    ):
        load_celeba(celeba_root)


def test_corrupt_image_is_named_or_skipped(celeba_root):
    (celeba_root / "img_align_celeba" / "000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"000002.jpg.*skip_bad_images"):
        load_celeba(celeba_root, image_size=8)
    images, metadata = load_celeba(celeba_root, image_size=8, skip_bad_images=True)
    assert len(images) == len(metadata) == 35
    assert "000002.jpg" not in set(metadata["filename"]) and metadata.attrs["skipped_images"] == 1
    assert list(metadata["image_id"]) == list(range(35))


def test_crop_larger_than_image_is_an_error_naming_the_file(celeba_root):
    with pytest.raises(ValueError, match=r"000001.jpg.*crop_size 300"):
        load_celeba(celeba_root, crop_size=300)


def test_celeba_metadata_round_trips_through_parquet(celeba_root, tmp_path):
    _, metadata = load_celeba(celeba_root, image_size=8, limit=4)
    metadata.to_parquet(tmp_path / "m.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "m.parquet"), metadata)


def test_partition_file_missing_an_image_is_named(celeba_root):
    path = celeba_root / "list_eval_partition.txt"
    path.write_text(
        "".join(
            line + "\n"
            for line in path.read_text().splitlines()
            if not line.startswith("000005.jpg")
        )
    )
    with pytest.raises(
        ValueError, match=r"list_eval_partition.txt: no partition for 1 image\(s\).*000005.jpg"
    ):
        load_celeba(celeba_root)


def test_partition_file_listing_an_image_twice_or_a_bad_split_is_named(celeba_root):
    path = celeba_root / "list_eval_partition.txt"
    original = path.read_text()
    path.write_text(original + "000003.jpg 2\n")  # a second, contradicting entry
    with pytest.raises(
        ValueError, match=r"list_eval_partition.txt: 1 image\(s\) listed more than once.*000003.jpg"
    ):
        load_celeba(celeba_root)
    path.write_text(original.replace("000004.jpg 0", "000004.jpg 3"))
    with pytest.raises(
        ValueError, match=r"list_eval_partition.txt: partitions must be 0 \(train\), 1"
    ):
        load_celeba(celeba_root)
