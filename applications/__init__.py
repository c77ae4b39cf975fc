"""Model families built on the keras-se layers, installed as `keras_se.applications`.

This folder lives at the top of the repository and is mapped to `keras_se.applications` by
`pyproject.toml`, for regular and editable installs alike. The SE-ResNet, SE-Inception,
SE-MobileNet and SKNet constructors arrive here with their own issues.

Example:
>>> import keras_se.applications
>>> keras_se.applications.__name__
'keras_se.applications'
"""

__all__ = []
