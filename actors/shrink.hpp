#pragma once

namespace imengine {

// An unordered map's bucket array does not shrink on erase: after a storm
// of users that went, give it back once the map is mostly empty. Rare (the
// map must lose 7/8 of its entries between two rehashes), so O(n) is fine.
template <class Map>
void shrink_if_sparse(Map& map) {
  if (map.bucket_count() > 1024 && map.size() < map.bucket_count() / 8)
    map.rehash(0);
}

} // namespace imengine
