// The detect library is assembled from its subfolders (see CMakeLists.txt).
