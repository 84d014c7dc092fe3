"""image_folder source and the shared decoding steps, on a folder of mixed formats and modes."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image

from ugvae_pipeline.data import imaging
from ugvae_pipeline.data.image_folder import list_images, load_image_folder
from ugvae_pipeline.data.imaging import build_image_cache, to_mode
from ugvae_pipeline.data.sources import load_source


def _by_name(images, metadata, name):
    return images[int(np.flatnonzero(metadata["filename"].str.endswith(name).to_numpy())[0])]


def test_every_mode_becomes_rgb_of_the_configured_size(image_folder_root):
    params = {
        "source": "image_folder",
        "image_folder": {"root": str(image_folder_root), "image_size": 8},
    }
    images, metadata = load_source(params)
    assert images.shape == (7, 3, 8, 8) and images.dtype == np.uint8
    assert "chien_été.bmp" in set(metadata["filename"].str.split("/").str[-1])
    assert list(_by_name(images, metadata, "palette.gif")[:, 4, 4]) == [0, 255, 0]
    assert list(_by_name(images, metadata, "rgb.JPG")[:, 4, 4]) == pytest.approx(
        [0, 128, 255], abs=3
    )
    assert set(_by_name(images, metadata, "wide16.png")[:, 4, 4]) == {
        128
    }  # 16-bit rescaled, not clipped
    transparent = _by_name(images, metadata, "transparent.png")
    assert list(transparent[:, 1, 4]) == [255, 0, 0] and list(transparent[:, 6, 4]) == [
        255,
        255,
        255,
    ]


def test_grayscale_mode_and_centre_square_crop(image_folder_root):
    images, metadata = load_image_folder(image_folder_root, channels=1, image_size=10)
    assert images.shape == (7, 1, 10, 10)
    gray = _by_name(images, metadata, "gray.png")[0]
    # the 40x30 ramp loses 5 columns each side: it starts near 5/39*255 and ends near 34/39*255
    assert 25 < gray[0, 0] < 45 and 210 < gray[0, -1] < 230


def test_folder_column_split_and_labels(image_folder_root):
    _, metadata = load_image_folder(
        image_folder_root, image_size=4, validation_fraction=0.15, test_fraction=0.3, split_seed=1
    )
    folders = dict(zip(metadata["filename"], metadata["folder"]))
    assert (
        folders["dogs/nested/wide16.png"] == "dogs"
        and folders["cats/gray.png"] == "cats"
        and folders["top.webp"] == ""
    )
    assert (metadata["label"] == -1).all() and (metadata["split"] == "test").sum() == 2
    _, again = load_image_folder(
        image_folder_root, image_size=4, validation_fraction=0.15, test_fraction=0.3, split_seed=1
    )
    assert list(again["split"]) == list(metadata["split"])


def test_listing_is_recursive_sorted_and_ignores_other_files(image_folder_root):
    names = [p.relative_to(image_folder_root).as_posix() for p in list_images(image_folder_root)]
    assert names == sorted(names) and "notes.txt" not in names and "dogs/nested/wide16.png" in names


def test_missing_or_empty_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist.*data.image_folder.root"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no image files under .*empty.*\.png"):
        load_image_folder(tmp_path / "empty")


def test_bad_channel_count_fails_before_reading(tmp_path):
    with pytest.raises(ValueError, match="channels must be 1 .* or 3"):
        load_image_folder(tmp_path / "nowhere", channels=4)


def test_corrupt_file_is_named_or_skipped(image_folder_root):
    (image_folder_root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=r"cannot read image .*broken.png.*skip_bad_images"):
        load_image_folder(image_folder_root, image_size=4)
    images, metadata = load_image_folder(image_folder_root, image_size=4, skip_bad_images=True)
    assert len(images) == len(metadata) == 7 and metadata.attrs["skipped_images"] == 1
    assert "cats/broken.png" not in set(metadata["filename"])


def test_cache_is_filled_in_place_in_path_order(image_folder_root):
    paths = list_images(image_folder_root)
    cache, kept = build_image_cache(paths, 1, 6)
    assert cache.shape == (7, 1, 6, 6) and kept.all()
    assert cache.dtype == np.uint8  # filled in place, never a float copy
    assert cache[paths.index(image_folder_root / "top.webp")].min() == 200


def test_large_jobs_log_progress_off_a_terminal(image_folder_root, monkeypatch, caplog):
    monkeypatch.setattr(imaging, "PROGRESS_MIN_IMAGES", 5)
    with caplog.at_level(logging.INFO, logger=imaging.__name__):
        build_image_cache(list_images(image_folder_root), 3, 4, desc="faces")
    assert any("faces: 7/7 images" in message for message in caplog.messages)


def test_la_image_is_composited_on_white():
    la = Image.fromarray(
        np.stack([np.zeros((2, 2), np.uint8), np.array([[0, 255], [255, 0]], np.uint8)], -1), "LA"
    )
    assert np.asarray(to_mode(la, "L")).tolist() == [[255, 0], [0, 255]]


def test_skipped_images_are_counted_in_the_ingestion_metrics(image_folder_root, tmp_path):
    from ugvae_pipeline.data.cache import ImageCache
    from ugvae_pipeline.pipelines.ingestion.nodes import ingest_images

    (image_folder_root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    params = {
        "source": "image_folder",
        "image_folder": {
            "root": str(image_folder_root),
            "image_size": 4,
            "skip_bad_images": True,
            "validation_fraction": 0.25,
            "test_fraction": 0.25,
        },
    }
    cache = ImageCache(tmp_path / "cache")
    images, metadata, metrics = ingest_images(params, cache)
    assert metrics["ingest_skipped_images"] == [{"value": 1.0, "step": 0}]
    reused = ingest_images(params, cache)[2]  # the count survives the cache
    assert reused["ingest_skipped_images"][0]["value"] == 1.0
    assert reused["ingest_cache_reused"][0]["value"] == 1.0
    counted = sum(
        metrics[f"ingest_{split}_images"][0]["value"] for split in ("train", "validation", "test")
    )
    assert counted == len(images) == 7
    mixed = {"source": "mixed", "mixed": {"sources": [params, {**params, "domain": "copy"}]}}
    assert ingest_images(mixed, cache)[2]["ingest_skipped_images"][0]["value"] == 2.0


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.png", b"", "cannot identify image file"),
        ("letter.jpg", b"Dear reader, this is text.", "cannot identify image file"),
        ("cut.png", None, "image file is truncated"),
    ],
    ids=["zero-bytes", "text-named-jpg", "truncated-png"],
)
def test_unreadable_files_are_named_with_the_cause(tmp_path, name, content, message):
    if content is None:  # a real PNG cut in the middle of its pixel data
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        whole = _png_bytes(Image.fromarray(noise))
        content = whole[: len(whole) // 2]
    (tmp_path / "ok.png").write_bytes(_png_bytes(Image.new("RGB", (4, 4), (9, 9, 9))))
    (tmp_path / name).write_bytes(content)
    with pytest.raises(
        ValueError, match=rf"cannot read image .*{name}: .*{message}.*skip_bad_images"
    ):
        load_image_folder(tmp_path, image_size=4)
    images, metadata = load_image_folder(tmp_path, image_size=4, skip_bad_images=True)
    assert list(metadata["filename"]) == ["ok.png"] and metadata.attrs["skipped_images"] == 1


def test_palette_pngs_with_and_without_transparency(tmp_path):
    Image.new("RGB", (6, 6), (0, 0, 255)).convert("P").save(tmp_path / "opaque.png")
    transparent = Image.new("P", (6, 6), 0)
    transparent.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    transparent.save(tmp_path / "clear.png", transparency=0)  # palette index 0 fully transparent
    images, metadata = load_image_folder(tmp_path, image_size=4)
    assert list(_by_name(images, metadata, "opaque.png")[:, 2, 2]) == [0, 0, 255]
    assert list(_by_name(images, metadata, "clear.png")[:, 2, 2]) == [
        255,
        255,
        255,
    ]  # on white, not red


def test_one_pixel_image_is_upsampled_to_its_colour(tmp_path):
    Image.new("RGB", (1, 1), (10, 200, 30)).save(tmp_path / "dot.png")
    images, _ = load_image_folder(tmp_path, image_size=16)
    assert images.shape == (1, 3, 16, 16)
    assert (images[0].reshape(3, -1).T == (10, 200, 30)).all()


def test_ten_thousand_pixel_square_decodes_with_a_warning(tmp_path):
    big = Image.new("L", (10_000, 10_000), 0)
    big.paste(255, (0, 0, 10_000, 5_000))  # top half white
    big.save(tmp_path / "big.png", compress_level=1)
    del big
    with pytest.warns(Image.DecompressionBombWarning):  # 100 MP is over PIL's 89.5 MP warning limit
        images, _ = load_image_folder(tmp_path, channels=1, image_size=8)
    assert images[0, 0, 0, 4] == 255 and images[0, 0, -1, 4] == 0


def test_decompression_bomb_is_refused_by_name_or_skipped(tmp_path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "bomb.png")
    Image.new("RGB", (10, 10)).save(tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4_000)  # 10,000 pixels is over twice the limit
    with pytest.raises(
        ValueError, match=r"cannot read image .*bomb.png: refused as a possible decompression bomb"
    ):
        load_image_folder(tmp_path, image_size=4)
    _, metadata = load_image_folder(tmp_path, image_size=4, skip_bad_images=True)
    assert list(metadata["filename"]) == ["small.png"] and metadata.attrs["skipped_images"] == 1
