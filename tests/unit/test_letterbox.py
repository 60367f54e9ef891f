"""Frame ↔ model-input geometry: letterbox, its inverse, square person crops, NMS, pose matching."""

from __future__ import annotations

import numpy as np
import pytest

from gemwatch.perception.detector import batched_nms, nms
from gemwatch.perception.letterbox import (
    clip_boxes,
    crop_resize,
    letterbox,
    letterbox_params,
    square_crop_box,
    unletterbox_boxes,
)
from gemwatch.perception.pose import assign_poses, box_iou


@pytest.mark.parametrize(
    ("width", "height", "size", "expected"),
    [
        (1280, 720, 512, (0.4, 512, 288, 0, 112)),  # 16:9 → bars top and bottom
        (720, 1280, 512, (0.4, 288, 512, 112, 0)),  # portrait → bars left and right
        (512, 512, 512, (1.0, 512, 512, 0, 0)),  # already square: untouched
        (100, 50, 416, (4.16, 416, 208, 0, 104)),  # upscaled
        (1280, 720, (256, 160), (0.2, 256, 144, 0, 8)),  # rectangular target
        (641, 480, 320, (320 / 641, 320, 240, 0, 40)),
    ],
)
def test_letterbox_params(width: int, height: int, size, expected) -> None:
    scale, new_w, new_h, pad_x, pad_y = letterbox_params(width, height, size)
    assert scale == pytest.approx(expected[0])
    assert (new_w, new_h, pad_x, pad_y) == expected[1:]


def test_letterbox_places_the_picture_in_the_middle_and_pads_with_the_pad_value() -> None:
    image = np.full((720, 1280, 3), 200, dtype=np.uint8)
    padded, scale, pad_x, pad_y = letterbox(image, 512, pad_value=7)
    assert padded.shape == (512, 512, 3)
    assert padded.dtype == np.uint8
    assert (scale, pad_x, pad_y) == (pytest.approx(0.4), 0, 112)
    assert (padded[:112] == 7).all() and (padded[112 + 288 :] == 7).all()
    assert (padded[112 : 112 + 288] == 200).all()


def test_letterbox_keeps_a_marked_pixel_where_the_parameters_say() -> None:
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[300:310, 100:110] = 255  # a 10×10 white square centred at (105, 305)
    padded, scale, pad_x, pad_y = letterbox(image, 320)
    ys, xs = np.nonzero(padded[..., 0] > 127)
    assert xs.mean() == pytest.approx(105 * scale + pad_x - 0.25, abs=1.0)
    assert ys.mean() == pytest.approx(305 * scale + pad_y - 0.25, abs=1.0)


def test_letterbox_rejects_an_empty_picture() -> None:
    with pytest.raises(ValueError, match="empty"):
        letterbox(np.zeros((0, 10, 3), dtype=np.uint8), 64)


@pytest.mark.parametrize(
    ("size", "shape"), [(512, (720, 1280, 3)), (512, (1280, 720, 3)), (416, (576, 768, 3)), (256, (100, 100))]
)
def test_unletterbox_inverts_the_mapping(size: int, shape: tuple[int, ...]) -> None:
    height, width = shape[:2]
    frame_boxes = np.array(
        [[10, 20, 110, 220], [0, 0, width, height], [width / 2, height / 3, width - 1, height - 1]]
    )
    scale, _, _, pad_x, pad_y = letterbox_params(width, height, size)
    model_boxes = frame_boxes * scale + np.array([pad_x, pad_y, pad_x, pad_y])
    back = unletterbox_boxes(model_boxes, scale, pad_x, pad_y)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, frame_boxes, atol=1e-3)


def test_unletterbox_of_no_boxes_is_an_empty_n_by_4_array() -> None:
    assert unletterbox_boxes(np.zeros((0, 4)), 0.5, 0, 10).shape == (0, 4)


def test_clip_boxes_clamps_to_the_frame() -> None:
    boxes = np.array([[-5, -5, 50, 50], [90, 40, 130, 70], [200, 200, 300, 300]], dtype=np.float32)
    clipped = clip_boxes(boxes, 100, 60)
    np.testing.assert_array_equal(clipped, [[0, 0, 50, 50], [90, 40, 100, 60], [100, 60, 100, 60]])


@pytest.mark.parametrize(
    ("box", "margin", "expected"),
    [
        ((100, 100, 140, 200), 0.0, (70, 100, 170, 200)),  # tall box: side = height
        ((100, 100, 140, 200), 0.2, (60, 90, 180, 210)),
        ((0, 0, 80, 20), 0.5, (-20, -50, 100, 70)),  # wide box, may leave the frame
    ],
)
def test_square_crop_box(box, margin: float, expected) -> None:
    np.testing.assert_allclose(square_crop_box(np.array(box, dtype=np.float32), margin), expected)


def test_crop_resize_pads_outside_the_frame_and_scales_the_inside() -> None:
    image = np.full((100, 100, 3), 50, dtype=np.uint8)
    image[40:60, 40:60] = 250
    crop = crop_resize(image, np.array([-50, -50, 150, 150], dtype=np.float32), 100, pad_value=0)
    assert crop.shape == (100, 100, 3)
    assert (crop[:20] == 0).all() and (crop[:, -20:] == 0).all()  # out-of-frame border
    assert crop[50, 50, 0] == 250 and crop[30, 30, 0] == 50


def test_nms_drops_the_lower_scored_overlap_and_keeps_separate_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10.5]], dtype=np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.3], dtype=np.float32)
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [1, 2])


def test_batched_nms_never_suppresses_across_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    classes = np.array([0, 26, 0])
    assert sorted(batched_nms(boxes, scores, classes, 0.5).tolist()) == [0, 1]
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).shape == (0,)


def test_box_iou_matrix() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]], atol=1e-6)


def test_assign_poses_matches_each_box_to_its_own_pose_once() -> None:
    people = np.array([[0, 0, 10, 20], [50, 0, 60, 20], [100, 0, 110, 20]], dtype=np.float32)
    pose_boxes = np.array([[51, 1, 61, 21], [1, 0, 11, 20]], dtype=np.float32)
    poses = np.stack([np.full((17, 3), 1.0), np.full((17, 3), 2.0)]).astype(np.float32)
    result = assign_poses(people, pose_boxes, poses, min_iou=0.3)
    assert result.shape == (3, 17, 3)
    assert (result[0] == 2.0).all() and (result[1] == 1.0).all()
    assert (result[2] == 0.0).all()  # nobody's pose: scores 0, not a missing row
