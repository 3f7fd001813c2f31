"""Package layout that pyproject.toml cannot express alone.

templates/ and startup/ sit at the top of the repository, where people look
for them, but must travel inside the installed package (wfgen.templates and
wfgen.startup) so that a plain `pip install .` works anywhere.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["wfgen", "wfgen.*"]), "wfgen.templates", "wfgen.startup"],
    package_dir={"wfgen.templates": "templates", "wfgen.startup": "startup"},
)
