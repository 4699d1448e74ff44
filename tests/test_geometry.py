"""Coordinate conversions: properties that must hold for any input."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dataengine import geometry as g

finite = st.floats(-1e4, 1e4, allow_nan=False)


@given(finite, finite, st.floats(0, 1e3), st.floats(0, 1e3))
def test_xywh_xyxy_round_trip(x, y, w, h):
    back = g.xyxy_to_xywh(g.xywh_to_xyxy([x, y, w, h]))
    assert np.allclose(back, [x, y, w, h], atol=1e-6)


@given(finite, finite, finite, finite, st.integers(1, 4000), st.integers(1, 4000))
def test_clipped_boxes_are_inside_and_ordered(x1, y1, x2, y2, w, h):
    box, _ = g.clip_box_xyxy([x1, y1, x2, y2], w, h)
    if box is not None:
        assert g.box_inside(box, w, h)


def test_clip_reports_change():
    assert g.clip_box_xyxy([-5, 10, 50, 600], 640, 480) == ([0.0, 10.0, 50.0, 480.0], True)
    assert g.clip_box_xyxy([5, 10, 50, 60], 640, 480) == ([5.0, 10.0, 50.0, 60.0], False)
    assert g.clip_box_xyxy([700, 10, 800, 60], 640, 480) == (None, True)


def test_inner_point_lies_inside_a_non_convex_mask():
    mask = np.zeros((50, 50), dtype=bool)
    mask[5:45, 5:12] = True  # an L shape whose box centre is off the mask
    mask[38:45, 5:45] = True
    x, y = g.mask_inner_point(mask)
    assert g.point_in_mask([x, y], mask)
    cx, cy = 25, 25
    assert not g.point_in_mask([cx, cy], mask)


def test_coco_polygon_mask_and_bbox():
    mask = g.coco_segmentation_to_mask([[10, 10, 30, 10, 30, 20, 10, 20]], 40, 40)
    assert mask.sum() > 0
    x1, y1, x2, y2 = g.mask_bbox_xyxy(mask)
    assert abs(x1 - 10) <= 1 and abs(y1 - 10) <= 1 and abs(x2 - 30) <= 1 and abs(y2 - 20) <= 1


def test_sample_points_in_mask_is_seeded():
    mask = np.zeros((20, 20), dtype=bool)
    mask[3:9, 4:15] = True
    a = g.sample_points_in_mask(mask, 5, seed=7)
    assert a == g.sample_points_in_mask(mask, 5, seed=7)
    assert all(g.point_in_mask(p, mask) for p in a)


def test_projection_of_a_point_on_the_optical_axis_hits_the_principal_point():
    k = np.array([[100.0, 0, 112.0], [0, 100.0, 112.0], [0, 0, 1]])
    pixels, depth = g.project_points_cv(np.array([[0.0, 0.0, 2.0]]), k, np.eye(4))
    assert np.allclose(pixels, [[112.0, 112.0]]) and np.allclose(depth, [2.0])


def test_box_iou():
    assert g.box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert g.box_iou([0, 0, 10, 10], [10, 10, 20, 20]) == 0.0
    assert abs(g.box_iou([0, 0, 10, 10], [5, 0, 15, 10]) - 1 / 3) < 1e-9
