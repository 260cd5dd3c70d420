# The JS client module (examples/web/imclient.js) under Node's test runner,
# against the real engine binary. Skipped (77) without Node >= 20.
add_test(NAME js_client_test COMMAND ${PROJECT_SOURCE_DIR}/tests/js/run.sh)
set_tests_properties(js_client_test PROPERTIES
  ENVIRONMENT "IMENGINE_BIN=$<TARGET_FILE:imengine>"
  SKIP_RETURN_CODE 77
  TIMEOUT 300)
