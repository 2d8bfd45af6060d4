"""CernVM-FS delivery (DESIGN §10): publish expanded releases into a site's CVMFS repositories.

The console's store stays the truth for releases, signatures and channels; each configured
``[cvmfs]`` target follows it. Modules, in the order a publish uses them:

* ``layout``: the targets of ``console.toml`` and the repository layout (``core.node.mount`` reads it);
* ``runner``: the site's own tools around every change (transaction / publish / abort, or ingest),
  one change at a time per repository (a lock), an interrupted transaction aborted on the next run;
* ``publish``: a release written as plain trees (``core.store.materialize``), envelope, ``depot.env``
  and ``.cvmfscatalog``; a release already present is not written again;
* ``sync``: channel flips (each its own small transaction) after ``promote``/``rollback``, and
  ``console cvmfs sync`` to bring a target back in line with the store;
* ``status``: per target, releases present, channels in line / behind / failed, revision;
* ``gc``: releases no channel needs, removed in their own transaction;
* ``initscript``: ``depot-init.sh``, the POSIX sh a node sources to use the depot in place.
"""
