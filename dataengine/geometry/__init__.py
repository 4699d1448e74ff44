"""Coordinates and transforms, one module per audience:

- `geometry.image`: continuous pixels, boxes, points, normalized values and resized model frames (converters,
  answer styles, inspection);
- `geometry.masks`: binary masks and COCO polygons -> boxes, inner points, sampled points (converters, labels);
- `geometry.rigid`: quaternions, poses, transforms, cameras, projection, USD lens (simulator, USD, training).

Every name is importable from `dataengine.geometry` too, so imports written against the single module keep working.
"""

from dataengine.geometry.image import *  # noqa: F403
from dataengine.geometry.image import __all__ as _image
from dataengine.geometry.masks import *  # noqa: F403
from dataengine.geometry.masks import __all__ as _masks
from dataengine.geometry.rigid import *  # noqa: F403
from dataengine.geometry.rigid import __all__ as _rigid

__all__ = [*_image, *_masks, *_rigid]
