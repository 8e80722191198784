"""A stand-in for the `mongo` image where no registry can supply it: MongoDB's wire protocol over a real
socket, answered from a mongomock database. A test double for the container suites, never a product."""
