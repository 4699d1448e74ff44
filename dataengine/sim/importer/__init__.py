"""`dataengine sim assets import`: a folder of user meshes -> a catalog of simulation-ready textured objects.

`sources` finds the meshes and their metadata, `load` reads and checks one mesh, `normalize` puts it in metres,
upright and recentred with a mass, `collision` decomposes it into convex pieces, `write` stores the files and the
catalog entry, `job` runs it all on Ray (resumable, cached by mesh hash) and `fixtures` writes a procedural mesh
library for tests and demos.
"""
