"""The dashboard's widgets: clusters table, hierarchy tree, map, detail and pipeline panels."""
