// A plugin built against another version of the plugin API: its entry
// point reports version 999 and refuses, as IMENGINE_PLUGIN's does when
// the versions differ. The engine must refuse to start, saying so.

#include <cstdint>

extern "C" __attribute__((visibility("default"))) int
imengine_plugin_entry(uint32_t, uint32_t* plugin_api, void*) {
  *plugin_api = 999;
  return 1;
}
