// express4 is the npm alias of express@4 used to run the router tests on both majors; its API
// for what the tests use is the same as express 5's, whose types are installed.
declare module 'express4' {
  import express from 'express'
  export default express
}
